"""U-Net after Ronneberger et al. (2015), sized for a CPU.

Per level: two 3x3 convolutions (+ optional BatchNorm) with ReLU; 2x2 max-pool
down; 2x2 transposed-convolution ("up-convolution") up; skip concatenation;
1x1 head. Width doubles per level from `base_width`. Fully convolutional: any
H and W divisible by 2**depth.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
from keras import layers


@dataclass
class UNetConfig:
    base_width: int = 8  # channels at full resolution; doubles per level
    depth: int = 4  # number of 2x down-samplings
    batchnorm: bool = True
    in_channels: int = 3
    num_classes: int = 1  # 1: sigmoid foreground; >1: softmax over classes
    max_width: int = 256  # caps the width of deep levels
    bn_momentum: float = 0.9  # Keras' 0.99 lags the fast-moving early weights; eval-mode Dice collapses

    def widths(self) -> list[int]:
        return [min(self.base_width * 2**level, self.max_width) for level in range(self.depth + 1)]

    def to_dict(self) -> dict:
        return {"name": "unet", **asdict(self)}

    @property
    def normalisation(self):
        from carmask.preprocess import Normalisation

        return Normalisation()  # pixel / 255

    def is_encoder(self, layer_name: str) -> bool:
        """The classic U-Net trains from scratch: no layer is a pretrained encoder's."""
        return False

    def build(self, input_size: tuple[int, int] | None = None) -> keras.Model:
        return build_unet(self, input_size)


def check_input_size(height: int, width: int, depth: int) -> None:
    """Raise ValueError unless both sides divide by 2**depth (skips must line up)."""
    step = 2**depth
    if height <= 0 or width <= 0 or height % step or width % step:
        raise ValueError(f"U-Net of depth {depth} needs height and width divisible by {step}; got {height}x{width}")


def _conv_block(x, filters: int, batchnorm: bool, name: str, momentum: float = 0.9):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batchnorm, name=f"{name}_conv{i}")(x)
        if batchnorm:
            x = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def build_unet(config: UNetConfig, input_size: tuple[int, int] | None = None) -> keras.Model:
    """Build the U-Net. `input_size` (h, w) fixes the spatial shape; None keeps it dynamic."""
    if input_size is not None:
        check_input_size(*input_size, config.depth)
    h, w = input_size if input_size is not None else (None, None)
    inputs = keras.Input(shape=(h, w, config.in_channels), name="image")
    widths = config.widths()

    x, skips = inputs, []
    for level, filters in enumerate(widths[:-1]):
        x = _conv_block(x, filters, config.batchnorm, f"enc{level}", config.bn_momentum)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}")(x)

    x = _conv_block(x, widths[-1], config.batchnorm, "bottleneck", config.bn_momentum)

    for level in reversed(range(config.depth)):
        x = layers.Conv2DTranspose(widths[level], 2, strides=2, name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([skips[level], x])
        x = _conv_block(x, widths[level], config.batchnorm, f"dec{level}", config.bn_momentum)

    activation = "sigmoid" if config.num_classes == 1 else "softmax"
    outputs = layers.Conv2D(config.num_classes, 1, activation=activation, dtype="float32", name="mask")(x)
    return keras.Model(inputs, outputs, name="unet")
