"""The car's glass: a model's second output, read as the manifest's `output.windows` says.

A model that marks glass has a second ONNX output (its name in `output.windows.name`) of glass
probabilities beside the car's. Glass is part of the car, so the served windows mask is the glass output
above its threshold inside the served car mask: a reflection in a shop window beside the car is not the
car's glass. Cutouts use the soft probabilities for see-through or tinted windows (carmask.cutout).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carmask.preprocess import threshold_u8


class NoGlassError(ValueError):
    """Glass was asked of a model without a glass output."""


@dataclass(frozen=True)
class Glass:
    name: str = ""  # the ONNX output; "" : the model marks no glass
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 0.0 <= float(self.threshold) <= 1.0:
            raise ValueError(f"windows needs an output name and a threshold in [0, 1], got {self.name!r}, "
                             f"{self.threshold!r}")  # fmt: skip

    @property
    def present(self) -> bool:
        return bool(self.name)


def needs_glass(has_glass: bool, fmt: str, see_through: bool) -> bool:
    """Whether an answer in format `fmt` uses the glass output: windows masks, see-through or tinted cutouts
    (`see_through`), and RLE answers of a model that has one (they carry the windows beside the car)."""
    if fmt == "rle":
        return has_glass
    if fmt == "cutout":
        return see_through
    return fmt == "windows"


def windows_mask(glass_u8: np.ndarray, car_mask: np.ndarray, threshold: float) -> np.ndarray:
    """0/1 uint8 glass inside the car: `glass_u8` (8-bit probabilities) and `car_mask` at one size."""
    if glass_u8.shape != car_mask.shape:
        raise ValueError(f"glass {glass_u8.shape} and car mask {car_mask.shape} differ in size")
    return threshold_u8(glass_u8, threshold) & (car_mask > 0).astype(np.uint8)
