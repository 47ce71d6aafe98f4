"""Framing: the car's box plus a margin (a fraction of the box per side); past the photo the canvas is empty."""

from __future__ import annotations

import numpy as np


def car_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), exclusive ends, of the mask's pixels; None for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def crop_region(mask: np.ndarray, margin: float, below: int = 0) -> tuple[int, int, int, int]:
    """The region to frame: the car's box grown by `margin` of its width and height per side, and at least
    `below` pixels under it (room for a shadow); the whole photo when there is no car."""
    box = car_box(mask)
    if box is None:
        return 0, 0, mask.shape[1], mask.shape[0]
    x0, y0, x1, y1 = box
    dx, dy = round(margin * (x1 - x0)), round(margin * (y1 - y0))
    return x0 - dx, y0 - dy, x1 + dx, y1 + max(dy, below)


def take(array: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    """`array`'s pixels in `region` (which may reach past its sides: zeros there)."""
    x0, y0, x1, y1 = region
    h, w = array.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0, *array.shape[2:]), array.dtype)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = array[sy0:sy1, sx0:sx1]
    return out
