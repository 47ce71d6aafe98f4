"""Segmentation losses in backend-neutral `keras.ops`: BCE, soft Dice, BCE + Dice.

All take probabilities (the model ends in a sigmoid) of shape (N, H, W, 1)
and return the mean over the batch. Dice is computed per image, then averaged,
matching Kaggle's Carvana metric. Labels are 0 or 1; any other value (the
sources' ignore label, 255) marks a pixel that counts in neither term.
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


@keras.saving.register_keras_serializable(package="carmask")
def bce(y_true, y_pred):
    p = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
    y, valid = _split(y_true, p)
    per_pixel = -(y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p))
    return ops.sum(per_pixel * valid) / ops.maximum(ops.sum(valid), 1.0)


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


LOSSES = {"bce": bce, "dice": dice_loss, "bce_dice": bce_dice}


def get_loss(name: str):
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}")
    return LOSSES[name]
