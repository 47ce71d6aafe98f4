"""The glass head: a few small layers on a frozen car network's decoder, one sigmoid map of the car's glass.

It reads two of the trunk's decoder outputs: stride 8 (`dec1_pw_relu`, what is where: a window is glass
because of the car around it) and stride 2 (`dec4_b_relu`, the photo's own edges), and predicts each 2x2
block of pixels from stride 2, as the car output does. About 4 % of the trunk's multiply-adds.
"""

from __future__ import annotations

import keras
from keras import layers

from training.model.mobile_unet import DepthToSpace

CONTEXT_LAYER = "dec1_pw_relu"  # stride 8
DETAIL_LAYER = "dec4_b_relu"  # stride 2
OUTPUT_NAME = "windows"


def build_head(context_channels: int, detail_channels: int, width: int = 32) -> keras.Model:
    """A model from (context, detail) features to the glass probability at full resolution."""
    context = keras.Input((None, None, context_channels), name="context")
    detail = keras.Input((None, None, detail_channels), name="detail")
    x = layers.Conv2D(width, 3, padding="same", activation="relu", name="glass_ctx_a")(context)
    x = layers.Conv2D(width, 3, padding="same", activation="relu", name="glass_ctx_b")(x)
    x = layers.Conv2DTranspose(width // 2, 4, strides=4, name="glass_up")(x)  # stride 8 -> 2
    x = layers.Concatenate(name="glass_cat")([x, detail])
    x = layers.DepthwiseConv2D(3, padding="same", name="glass_dw")(x)
    x = layers.Conv2D(width * 3 // 4, 1, activation="relu", name="glass_pw")(x)
    x = layers.Conv2D(4, 1, dtype="float32", name="glass_s2")(x)
    out = layers.Activation("sigmoid", dtype="float32", name=OUTPUT_NAME)(DepthToSpace(name="glass_d2s")(x))
    return keras.Model([context, detail], out, name="glass_head")


def feature_model(trunk: keras.Model) -> keras.Model:
    """The trunk with its car output and the head's two inputs as outputs."""
    taps = [trunk.get_layer(CONTEXT_LAYER).output, trunk.get_layer(DETAIL_LAYER).output]
    return keras.Model(trunk.inputs, [trunk.outputs[0], *taps], name="trunk_features")


def attach(trunk: keras.Model, head: keras.Model) -> keras.Model:
    """One model, two outputs: the trunk's car mask as it was, and the head's glass."""
    taps = [trunk.get_layer(CONTEXT_LAYER).output, trunk.get_layer(DETAIL_LAYER).output]
    return keras.Model(trunk.inputs, [trunk.outputs[0], head(taps)], name=trunk.name + "_glass")
