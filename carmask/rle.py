"""Kaggle Carvana run-length encoding: row-major, 1-indexed `start length` pairs."""

from __future__ import annotations

import numpy as np


class RLEError(ValueError):
    """An RLE string that is malformed or does not fit the given image size."""


def encode(mask: np.ndarray) -> str:
    """Encode a 2-D mask (non-zero = object) as a Kaggle RLE string."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    pixels = np.concatenate([[False], mask.ravel() != 0, [False]])
    # Positions where the value changes are run starts and run ends (1-indexed).
    changes = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1
    changes[1::2] -= changes[::2]
    return " ".join(map(str, changes))


def decode(rle: str, height: int, width: int) -> np.ndarray:
    """Decode a Kaggle RLE string into a (height, width) uint8 mask of 0/1."""
    total = height * width
    mask = np.zeros(total, dtype=np.uint8)
    text = rle.strip() if isinstance(rle, str) else ""
    if not text:
        return mask.reshape(height, width)
    try:
        numbers = np.array(text.split(), dtype=np.int64)
    except ValueError as exc:
        raise RLEError(f"RLE holds a non-integer token: {exc}") from None
    if numbers.size % 2:
        raise RLEError("RLE must hold an even number of integers (start length pairs)")
    starts, lengths = numbers[0::2] - 1, numbers[1::2]
    if (starts < 0).any() or (lengths <= 0).any():
        raise RLEError("RLE starts must be >= 1 and lengths >= 1")
    ends = starts + lengths
    if ends.max() > total:
        raise RLEError(f"RLE runs past the end of a {width}x{height} image")
    if (starts[1:] < ends[:-1]).any():
        raise RLEError("RLE runs must be sorted and must not overlap")
    for start, end in zip(starts, ends, strict=True):
        mask[start:end] = 1
    return mask.reshape(height, width)
