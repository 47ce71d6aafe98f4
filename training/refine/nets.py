"""The refiner networks: (N, H, W, 4) inputs in [-1, 1] (the photo's RGB and the coarse probability,
carmask.refine.learned.tile_inputs; sides a multiple of 4) to (N, H, W, 1) corrections of the coarse logit.

The exported graph is the correction alone: the coarse logit, the sigmoid and the band (only pixels near the
coarse outline change) are the runtime's (carmask.refine.learned), a lookup and a few pixels. Training wraps
the network as the runtime uses it (`with_prior`). DESIGNS names the candidates.
"""

from __future__ import annotations

import keras
from keras import layers, ops


def _conv(x, width: int, name: str, kernel: int = 3, strides: int = 1):
    """Convolution, batch normalisation (folded into the convolution in the exported graph), ReLU."""
    x = layers.Conv2D(width, kernel, strides=strides, padding="same", use_bias=False, name=name)(x)
    return layers.ReLU(name=f"{name}_relu")(layers.BatchNormalization(name=f"{name}_bn")(x))


def _sep(x, width: int, name: str, dilation: int = 1):
    x = layers.DepthwiseConv2D(3, padding="same", dilation_rate=dilation, name=f"{name}_dw")(x)
    return _conv(x, width, f"{name}_pw", kernel=1)


def unet_correction(x, width: int):
    """Full, half and quarter resolution: the photo's edge at full resolution, the car's shape around it
    from 4x coarser features (receptive field about 40 px); about 1,100 multiply-adds a pixel at width 8."""
    full = _conv(x, width, "full_a")
    half = _sep(_conv(full, 2 * width, "half_a", strides=2), 2 * width, "half_b")
    quarter = _conv(half, 3 * width, "quarter_a", strides=2)
    quarter = _sep(quarter, 3 * width, "quarter_b", dilation=2)
    up = layers.UpSampling2D(2, interpolation="nearest", name="quarter_up")(quarter)
    half = _sep(layers.Concatenate(name="half_cat")([half, up]), 2 * width, "half_c")
    up = layers.UpSampling2D(2, interpolation="nearest", name="half_up")(half)
    out = _sep(layers.Concatenate(name="full_cat")([full, up]), width, "full_b")
    return layers.Conv2D(1, 1, name="correction", dtype="float32", kernel_initializer="zeros")(out)


def dilated_correction(x, width: int):
    """Full resolution throughout, separable dilations 1, 2, 4, 8 (receptive field 35 px). Measured: it did not
    learn (models/README.md); kept as the second candidate `carmask-refiner train --design` can name."""
    h = _conv(x, width, "dil_a")
    for dilation in (1, 2, 4, 8):
        h = _sep(h, width, f"dil{dilation}", dilation=dilation)
    h = _sep(h, width, "dil_out")
    return layers.Conv2D(1, 1, name="correction", dtype="float32", kernel_initializer="zeros")(h)


DESIGNS = {"unet": unet_correction, "dilated": dilated_correction}


def build_refiner(design: str = "unet", width: int = 8) -> keras.Model:
    """The network of `design` (DESIGNS); starts as the identity (zero correction)."""
    if design not in DESIGNS:
        raise ValueError(f"unknown refiner design {design!r}; known: {sorted(DESIGNS)}")
    inputs = keras.Input((None, None, 4), name="tiles")
    return keras.Model(inputs, DESIGNS[design](inputs, width), name=f"refiner_{design}")


def with_prior(network: keras.Model) -> keras.Model:
    """For training: (inputs, coarse logit) -> refined probability, sigmoid(coarse logit + correction)."""
    inputs = keras.Input((None, None, 4), name="tiles")
    prior = keras.Input((None, None, 1), name="prior")
    out = layers.Activation("sigmoid", dtype="float32", name="refined")(ops.add(prior, network(inputs)))
    return keras.Model([inputs, prior], out, name="refiner_training")
