"""Segmentation losses in backend-neutral `keras.ops`: BCE, soft Dice, Lovasz, their sums; and multi-class kin.

The binary losses take probabilities (the model ends in a sigmoid) of shape (N, H, W, 1)
and return the mean over the batch. Dice is computed per image, then averaged,
matching Kaggle's Carvana metric. Labels are 0 or 1; any other value (the
sources' ignore label, 255) marks a pixel that counts in neither term.

The multi-class losses take softmax probabilities (N, H, W, K) and class-index labels (N, H, W, 1);
an index >= K (fill, 255) counts nowhere. Their Dice is per class over the batch, averaged over the
classes present in the labels or the prediction, so a rare class (cloud shadow) weighs as much as clear sky.
"""

from __future__ import annotations

import keras
from keras import ops

EPSILON = 1e-7
SMOOTH = 1.0


@keras.saving.register_keras_serializable(package="carmask")
def _split(y_true, y_pred):
    """(label 0/1, valid 0/1) as floats of the prediction's dtype."""
    y = ops.cast(y_true, y_pred.dtype)
    valid = ops.cast(y <= 1.0, y_pred.dtype)
    return y * valid, valid


def _bce_terms(y_true, y_pred):
    """(per-pixel BCE, label 0/1, valid 0/1) on probabilities clipped away from 0 and 1."""
    p = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
    y, valid = _split(y_true, p)
    return -(y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p)), y, valid


def _weighted_mean(values, weight):
    return ops.sum(values * weight) / ops.maximum(ops.sum(weight), 1.0)


@keras.saving.register_keras_serializable(package="carmask")
def bce(y_true, y_pred):
    per_pixel, _, valid = _bce_terms(y_true, y_pred)
    return _weighted_mean(per_pixel, valid)


@keras.saving.register_keras_serializable(package="carmask")
def dice_loss(y_true, y_pred):
    y, valid = _split(y_true, y_pred)
    p = y_pred * valid
    axes = tuple(range(1, len(y_pred.shape)))
    intersection = ops.sum(y * p, axis=axes)
    total = ops.sum(y, axis=axes) + ops.sum(p, axis=axes)
    return ops.mean(1.0 - (2.0 * intersection + SMOOTH) / (total + SMOOTH))


@keras.saving.register_keras_serializable(package="carmask")
def bce_dice(y_true, y_pred):
    return bce(y_true, y_pred) + dice_loss(y_true, y_pred)


BOUNDARY_WIDTH = 5  # pixels: a 5x5 window marks the band within 2 px of the label's edge
BOUNDARY_WEIGHT = 5.0  # how much more a pixel in that band counts in the BCE


def boundary_band(y):
    """1 where a (N, H, W, 1) 0/1 label changes within BOUNDARY_WIDTH // 2 pixels (dilation - erosion)."""
    dilated = ops.max_pool(y, BOUNDARY_WIDTH, strides=1, padding="same")
    eroded = -ops.max_pool(-y, BOUNDARY_WIDTH, strides=1, padding="same")
    return dilated - eroded


@keras.saving.register_keras_serializable(package="carmask")
def boundary_bce_dice(y_true, y_pred):
    """BCE with the pixels near the car's edge weighted BOUNDARY_WEIGHT times, plus soft Dice: the studio
    photos' remaining error lies within 2 px of the true boundary."""
    per_pixel, y, valid = _bce_terms(y_true, y_pred)
    weight = valid * (1.0 + (BOUNDARY_WEIGHT - 1.0) * boundary_band(y))
    return _weighted_mean(per_pixel, weight) + dice_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="carmask")
def lovasz_loss(y_true, y_pred):
    """The Lovasz extension of 1 - IoU (Berman et al. 2018, the binary Lovasz-softmax), per image, averaged.

    Pixel errors |label - p| sorted from the largest, weighted by the IoU's marginal loss as each pixel turns
    wrong; on 0/1 predictions it equals 1 - IoU exactly. Ignored pixels get error -1: sorted last, they add
    nothing.
    """
    y, valid = _split(y_true, y_pred)
    batch = ops.shape(y_pred)[0]
    errors = ops.reshape(ops.abs(y_pred - y) * valid - (1.0 - valid), (batch, -1))
    y = ops.reshape(y, (batch, -1))
    order = ops.argsort(-errors, axis=1)
    errors = ops.take_along_axis(errors, order, axis=1)
    y = ops.take_along_axis(y, order, axis=1)
    total = ops.sum(y, axis=1, keepdims=True)
    jaccard = 1.0 - (total - ops.cumsum(y, axis=1)) / (total + ops.cumsum(1.0 - y, axis=1))
    marginal = ops.concatenate([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=1)
    return ops.mean(ops.sum(ops.relu(errors) * marginal, axis=1))


@keras.saving.register_keras_serializable(package="carmask")
def bce_lovasz(y_true, y_pred):
    """BCE + the Lovasz IoU loss: for fine-tuning a BCE + Dice model towards the IoU it is judged by."""
    return bce(y_true, y_pred) + lovasz_loss(y_true, y_pred)


def _one_hot_valid(y_true, y_pred):
    """(one-hot labels (N, H, W, K) zero on ignored pixels, valid (N, H, W, 1)) as the prediction's dtype."""
    classes = y_pred.shape[-1]
    labels = ops.cast(y_true[..., 0], "int32")
    valid = ops.cast(labels < classes, y_pred.dtype)[..., None]
    one_hot = ops.one_hot(ops.minimum(labels, classes - 1), classes, dtype=y_pred.dtype) * valid
    return one_hot, valid


@keras.saving.register_keras_serializable(package="carmask")
def categorical_ce(y_true, y_pred):
    one_hot, valid = _one_hot_valid(y_true, y_pred)
    per_pixel = -ops.sum(one_hot * ops.log(ops.clip(y_pred, EPSILON, 1.0)), axis=-1)
    return ops.sum(per_pixel) / ops.maximum(ops.sum(valid), 1.0)


@keras.saving.register_keras_serializable(package="carmask")
def multiclass_dice_loss(y_true, y_pred):
    one_hot, valid = _one_hot_valid(y_true, y_pred)
    p = y_pred * valid
    intersection = ops.sum(one_hot * p, axis=(0, 1, 2))
    total = ops.sum(one_hot, axis=(0, 1, 2)) + ops.sum(p, axis=(0, 1, 2))
    present = ops.cast(total > 0.5, y_pred.dtype)
    dice = (2.0 * intersection + SMOOTH) / (total + SMOOTH)
    return ops.sum((1.0 - dice) * present) / ops.maximum(ops.sum(present), 1.0)


@keras.saving.register_keras_serializable(package="carmask")
def categorical_ce_dice(y_true, y_pred):
    return categorical_ce(y_true, y_pred) + multiclass_dice_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="carmask")
class WeightedCEDice(keras.losses.Loss):
    """Class-weighted cross-entropy (a weighted mean over the valid pixels) + the multi-class Dice.

    For rare classes (cloud shadow is ~1 % of the L8 Biome training pixels): unweighted, a model can drop
    the class entirely and lose almost nothing.
    """

    def __init__(self, class_weights, name: str = "weighted_ce_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.class_weights = [float(w) for w in class_weights]

    def call(self, y_true, y_pred):
        one_hot, _ = _one_hot_valid(y_true, y_pred)
        weight = ops.sum(one_hot * ops.convert_to_tensor(self.class_weights, dtype=y_pred.dtype), axis=-1)
        per_pixel = -ops.sum(one_hot * ops.log(ops.clip(y_pred, EPSILON, 1.0)), axis=-1) * weight
        ce = ops.sum(per_pixel) / ops.maximum(ops.sum(weight), EPSILON)
        return ce + multiclass_dice_loss(y_true, y_pred)

    def get_config(self) -> dict:
        return {**super().get_config(), "class_weights": self.class_weights}


LOSSES = {
    "bce": bce,
    "dice": dice_loss,
    "bce_dice": bce_dice,
    "boundary_bce_dice": boundary_bce_dice,
    "lovasz": lovasz_loss,
    "bce_lovasz": bce_lovasz,
    "ce": categorical_ce,
    "multiclass_dice": multiclass_dice_loss,
    "ce_dice": categorical_ce_dice,
}


def get_loss(name: str, class_weights: list[float] | None = None):
    """The loss by name; `class_weights` turns ce_dice into its class-weighted form."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}")
    if class_weights is not None:
        if name != "ce_dice":
            raise ValueError(f"class weights apply to the ce_dice loss, not {name!r}")
        return WeightedCEDice(class_weights)
    return LOSSES[name]
