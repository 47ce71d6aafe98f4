"""The band a full-resolution refiner may change: pixels within `radius` px (square windows) of the coarse
mask's outline (everywhere else the coarse answer stands), and the windows cut along it."""

from __future__ import annotations

import cv2
import numpy as np


def band_mask(prob_u8: np.ndarray, radius: int, level: int = 127) -> np.ndarray:
    """(H, W) bool: the pixels whose (2 radius + 1)-square window holds both sides of `prob_u8 > level`."""
    mask = (prob_u8 > level).view(np.uint8) if prob_u8.dtype == np.uint8 else (prob_u8 > level).astype(np.uint8)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask, kernel) != cv2.erode(mask, kernel)


def crop(array: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """A size x size window at (top, left), the photo's edge pixels repeated where it leaves the photo."""
    height, width = array.shape[:2]
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + size, height), min(left + size, width)
    window = array[y0:y1, x0:x1]
    pad = ((y0 - top, top + size - y1), (x0 - left, left + size - x1)) + ((0, 0),) * (array.ndim - 2)
    return np.pad(window, pad, mode="edge") if any(p for pair in pad for p in pair) else window
