"""MobileNetV2 (Sandler et al. 2018) in Keras, laid out exactly as torchvision's, so its ImageNet weights load.

Not `keras.applications.MobileNetV2`: that pads strided convolutions on the bottom/right only, torchvision
on all sides, which shifts every feature map by a pixel against the pretrained weights. Here strided
convolutions pad one pixel all round, BatchNorm uses torch's epsilon (1e-5), and layer names follow the
state dict (`features.4.conv.1.0` -> `features_4_conv_1_0`), which makes the weight mapping mechanical.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

# (expansion t, output channels c, repeats n, first stride s), as in the paper and torchvision.
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
BN_EPSILON = 1e-5  # torch's default; Keras' 1e-3 would shift every normalised activation
# ImageNet normalisation of torchvision's weights (after scaling pixels to 0..1): goes into the manifest.
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LAYER_PREFIX = "features_"  # every encoder layer's name starts so (torchvision's `features.`)
# Indices of `features` whose outputs are the skips at strides 2, 4, 8, 16 and 32.
SKIP_BLOCKS = (1, 3, 6, 13, 17)
SKIP_CHANNELS = (16, 24, 32, 96, 320)


def _name(*parts) -> str:
    return "_".join(str(p) for p in parts)


def _conv_bn(x, filters: int, kernel: int, stride: int, prefix: str, depthwise: bool = False, relu: bool = True):
    if stride > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=prefix + "_pad")(x)
    padding = "valid" if stride > 1 or kernel == 1 else "same"
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, padding=padding, use_bias=False, name=prefix + "_0")(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding=padding, use_bias=False, name=prefix + "_0")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=prefix + "_1")(x)
    return layers.ReLU(6.0, name=prefix + "_relu")(x) if relu else x


def _inverted_residual(x, index: int, in_ch: int, out_ch: int, stride: int, t: int):
    prefix = _name("features", index, "conv")
    y, conv = x, 0
    if t != 1:
        y = _conv_bn(y, in_ch * t, 1, 1, _name(prefix, conv))
        conv += 1
    y = _conv_bn(y, 0, 3, stride, _name(prefix, conv), depthwise=True)
    y = layers.Conv2D(out_ch, 1, use_bias=False, name=_name(prefix, conv + 1))(y)
    y = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=_name(prefix, conv + 2))(y)
    if stride == 1 and in_ch == out_ch:
        y = layers.Add(name=_name("features", index, "add"))([x, y])
    return y


def mobilenet_v2_features(x) -> list:
    """The feature maps after `SKIP_BLOCKS` for an input tensor `x` (normalised RGB)."""
    x = _conv_bn(x, 32, 3, 2, "features_0")
    outputs, in_ch, index = [], 32, 1
    for t, c, n, s in SETTINGS:
        for i in range(n):
            x = _inverted_residual(x, index, in_ch, c, s if i == 0 else 1, t)
            in_ch = c
            if index in SKIP_BLOCKS:
                outputs.append(x)
            index += 1
    return outputs


def build_classifier() -> keras.Model:
    """The whole ImageNet classifier (for proving a weight port on real photos)."""
    inputs = keras.Input((None, None, 3))
    x = mobilenet_v2_features(inputs)[-1]
    x = _conv_bn(x, 1280, 1, 1, "features_18")
    x = layers.GlobalAveragePooling2D()(x)
    logits = layers.Dense(1000, name="classifier_1")(x)
    return keras.Model(inputs, logits, name="mobilenet_v2")


def keras_weights(layer: keras.layers.Layer, state: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    """The state-dict arrays for one Keras layer, in Keras' order and layout; None if it has no weights."""
    key = layer.name.replace("_", ".").replace("features.", "features.", 1)
    if isinstance(layer, layers.DepthwiseConv2D):
        return [state[key + ".weight"].transpose(2, 3, 0, 1)]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    if isinstance(layer, layers.Conv2D):
        return [state[key + ".weight"].transpose(2, 3, 1, 0)]  # (out, in, kh, kw) -> (kh, kw, in, out)
    if isinstance(layer, layers.BatchNormalization):
        return [state[key + s] for s in (".weight", ".bias", ".running_mean", ".running_var")]
    if isinstance(layer, layers.Dense):
        return [state[key + ".weight"].T, state[key + ".bias"]]
    return None


def load_torch_weights(model: keras.Model, state: dict[str, np.ndarray]) -> int:
    """Copy torchvision MobileNetV2 weights into every `features_*`/`classifier_*` layer; returns how many."""
    loaded = 0
    for layer in model.layers:
        if not layer.name.startswith((LAYER_PREFIX, "classifier_")):
            continue
        arrays = keras_weights(layer, state)
        if arrays is None:
            continue
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [a.shape for a in arrays] != expected:
            raise ValueError(f"{layer.name}: weights {[a.shape for a in arrays]} do not fit {expected}")
        layer.set_weights(arrays)
        loaded += 1
    return loaded
