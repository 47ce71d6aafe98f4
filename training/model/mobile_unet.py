"""A U-Net on a pretrained MobileNetV2 encoder with a light decoder, sized for a 2-core CPU.

Encoder: torchvision's MobileNetV2 features up to block 17 (strides 2..32; the 1280-channel head is
dropped). Decoder: per level, nearest 2x upsampling,
concatenation with the encoder's skip, and a depthwise-separable 3x3 block (BatchNorm, ReLU). A small
full-resolution stem (one 3x3 conv on the normalised image) gives the last level the photo's own edges,
which Carvana's fine boundaries need. `half_res_block="conv"` also builds the stride-2 level as the classic
U-Net's (a two-conv image path at half resolution beside the encoder's skip, transposed convolution up, two
full 3x3 convolutions): the encoder's stride-2 features are semantic, and studio boundaries are decided there.
`upsampling="bilinear"` smooths each nearest 2x upsampling into bilinear with a fixed depthwise filter
(Keras' own bilinear resize does not convert to ONNX with dynamic shapes).
`full_res_block="subpixel"` runs nothing but the output at full resolution: a 4x4 stride-2 stem sees each
2x2 block of pixels, the finest level joins it at stride 2, and a 1x1 conv predicts the four pixels of each
block (depth to space): 30 % less model time than "conv" on this CPU, whose 8-channel full-resolution maps
ran half empty in onnxruntime's 16-channel blocks.
Fully convolutional: any height and width divisible by 32.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
from keras import layers, ops

from carmask.preprocess import Normalisation
from training.model.encoders import mobilenet_v2

DEPTH = 5  # the encoder downsamples 2**5 = 32 times
FULL_RES_BLOCKS = ("separable", "conv", "subpixel")


@dataclass
class MobileUNetConfig:
    decoder_widths: tuple[int, ...] = (64, 48, 32, 24, 16)  # strides 16, 8, 4, 2, 1
    stem_width: int = 8  # full-resolution convolution on the image
    # The stride-1 level: "separable" (like the others) or "conv": a 2x2 transposed convolution up, a
    # two-conv stem, and two full 3x3 convolutions, as the classic U-Net's finest level (sharper edges);
    # or "subpixel": two 3x3 convolutions at stride 2 on a stride-2 stem, each position predicting 2x2 pixels.
    full_res_block: str = "separable"
    # The stride-2 level: "separable" or "conv" (classic: needs full_res_block="conv"); half_width is the
    # channels of the image path at stride 2.
    half_res_block: str = "separable"
    half_width: int = 16
    # Decoder 2x upsampling at the separable levels: "nearest" or "bilinear" (nearest, then a fixed
    # [1,2,1]x[1,2,1]/16 depthwise filter: half-pixel bilinear inside the map, and a plain ONNX Conv).
    upsampling: str = "nearest"
    num_classes: int = 1
    in_channels: int = 3
    bn_momentum: float = 0.9
    weights: Path | None = None  # .npz of torchvision's state dict (carmask-weights fetch); None: random
    depth: int = field(default=DEPTH, init=False)

    def to_dict(self) -> dict:
        data = {"name": "mobile_unet", "encoder": "mobilenet_v2 (torchvision ImageNet weights)", **asdict(self)}
        data["weights"] = str(self.weights) if self.weights else None
        return data

    @property
    def normalisation(self) -> Normalisation:
        return Normalisation(mean=mobilenet_v2.MEAN, std=mobilenet_v2.STD)

    def is_encoder(self, layer_name: str) -> bool:
        """Whether a layer belongs to the pretrained encoder (the ported torchvision `features.*`)."""
        return layer_name.startswith(mobilenet_v2.LAYER_PREFIX)

    def build(self, input_size: tuple[int, int] | None = None) -> keras.Model:
        return build_mobile_unet(self, input_size)


def _separable_block(x, filters: int, name: str, momentum: float):
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=name + "_dw")(x)
    x = layers.BatchNormalization(momentum=momentum, name=name + "_dw_bn")(x)
    x = layers.ReLU(name=name + "_dw_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=name + "_pw")(x)
    x = layers.BatchNormalization(momentum=momentum, name=name + "_pw_bn")(x)
    return layers.ReLU(name=name + "_pw_relu")(x)


def _conv_bn_relu(x, filters: int, name: str, momentum: float, kernel: int = 3, strides: int = 1):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=name + "_conv")(x)
    x = layers.BatchNormalization(momentum=momentum, name=name + "_bn")(x)
    return layers.ReLU(name=name + "_relu")(x)


@keras.saving.register_keras_serializable(package="carmask")
class DepthToSpace(layers.Layer):
    """(N, H, W, 4C) -> (N, 2H, 2W, C): channel 2a + b of a position is pixel (a, b) of its 2x2 block.

    Reshapes and a transpose (backend-neutral, dynamic H and W); the subpixel head's last step. Not a
    2x2 stride-2 Conv2DTranspose, which tf2onnx converts wrongly for one output channel and a dynamic batch.
    """

    def call(self, x):
        shape = ops.shape(x)
        n, h, w, c = shape[0], shape[1], shape[2], x.shape[-1] // 4
        x = ops.reshape(x, (n, h, w, 2, 2, c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (n, h * 2, w * 2, c))

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else 2 * h, None if w is None else 2 * w, c // 4)


def _bilinear_smooth(x, name: str):
    """After nearest 2x upsampling, [1,2,1]/4 along each axis gives bilinear interpolation (half-pixel)."""
    import numpy as np

    smooth = layers.DepthwiseConv2D(3, padding="same", use_bias=False, trainable=False, name=name)
    x = smooth(x)
    taps = np.array([1.0, 2.0, 1.0]) / 4.0
    kernel = np.outer(taps, taps)[:, :, None, None] * np.ones((1, 1, x.shape[-1], 1))
    smooth.set_weights([kernel.astype("float32")])
    return x


def build_mobile_unet(config: MobileUNetConfig, input_size: tuple[int, int] | None = None) -> keras.Model:
    """Build the model; loads the ImageNet encoder weights when `config.weights` names them."""
    from training.model.unet import check_input_size

    if config.in_channels != 3:
        raise ValueError("the pretrained MobileNetV2 encoder takes 3-channel RGB input")
    if config.full_res_block not in FULL_RES_BLOCKS:
        raise ValueError(f"full_res_block must be one of {', '.join(FULL_RES_BLOCKS)}, not {config.full_res_block!r}")
    if config.half_res_block not in ("separable", "conv"):
        raise ValueError(f"half_res_block must be 'separable' or 'conv', not {config.half_res_block!r}")
    if config.half_res_block == "conv" and config.full_res_block != "conv":
        raise ValueError("half_res_block='conv' needs full_res_block='conv' (the image path starts there)")
    if config.upsampling not in ("nearest", "bilinear"):
        raise ValueError(f"upsampling must be 'nearest' or 'bilinear', not {config.upsampling!r}")
    if input_size is not None:
        check_input_size(*input_size, DEPTH)
    h, w = input_size if input_size is not None else (None, None)
    inputs = keras.Input(shape=(h, w, 3), name="image")
    skips = mobilenet_v2.mobilenet_v2_features(inputs)  # strides 2, 4, 8, 16, 32

    momentum, conv_head = config.bn_momentum, config.full_res_block == "conv"
    subpixel = config.full_res_block == "subpixel"
    if subpixel:  # each 2x2 block of pixels as one stride-2 position: full-resolution detail at half the cost
        stem = _conv_bn_relu(inputs, config.stem_width, "stem_s2", momentum, kernel=4, strides=2)
    else:
        stem = _conv_bn_relu(inputs, config.stem_width, "stem", momentum)
    if conv_head:
        stem = _conv_bn_relu(stem, config.stem_width, "stem2", momentum)
    finer = [stem, *skips[:-1]]  # what each decoder level joins: strides 1, 2, 4, 8, 16
    last = len(config.decoder_widths) - 1
    classic = {last} if conv_head or subpixel else set()  # decoder levels built the classic way (two 3x3 convs)
    if config.half_res_block == "conv":
        half = layers.MaxPooling2D(2, name="half_pool")(stem)
        half = _conv_bn_relu(half, config.half_width, "half_a", momentum)
        half = _conv_bn_relu(half, config.half_width, "half_b", momentum)
        finer[1] = layers.Concatenate(name="half_skip")([skips[0], half])
        classic.add(last - 1)

    x = skips[-1]
    for level, filters in enumerate(config.decoder_widths):
        skip, name = finer[-1 - level], f"dec{level}"
        if level in classic:
            if not (subpixel and level == last):  # the subpixel level joins the stem at stride 2: no upsampling
                x = layers.Conv2DTranspose(filters, 2, strides=2, name=name + "_up")(x)
            x = layers.Concatenate(name=name + "_cat")([x, skip])
            x = _conv_bn_relu(x, filters, name + "_a", momentum)
            x = _conv_bn_relu(x, filters, name + "_b", momentum)
            continue
        x = layers.UpSampling2D(2, interpolation="nearest", name=name + "_up")(x)
        if config.upsampling == "bilinear":
            x = _bilinear_smooth(x, name + "_smooth")
        x = layers.Concatenate(name=name + "_cat")([x, skip])
        x = _separable_block(x, filters, name, momentum)

    activation = "sigmoid" if config.num_classes == 1 else "softmax"
    if subpixel:  # each stride-2 position predicts its 2x2 pixels (sub-pixel convolution, Shi et al. 2016)
        x = layers.Conv2D(4 * config.num_classes, 1, dtype="float32", name="mask_s2")(x)
        outputs = layers.Activation(activation, dtype="float32", name="mask")(DepthToSpace(name="mask_d2s")(x))
    else:
        outputs = layers.Conv2D(config.num_classes, 1, activation=activation, dtype="float32", name="mask")(x)
    model = keras.Model(inputs, outputs, name="mobile_unet")
    if config.weights is not None:
        load_encoder_weights(model, config.weights)
    return model


def load_encoder_weights(model: keras.Model, path: Path) -> None:
    import numpy as np

    if not Path(path).is_file():
        raise FileNotFoundError(f"encoder weights {path} not found; run `carmask-weights fetch mobilenet_v2` first")
    with np.load(path) as data:
        state = dict(data)
    count = mobilenet_v2.load_torch_weights(model, state)
    if count == 0:
        raise ValueError(f"no encoder layer took weights from {path}")
