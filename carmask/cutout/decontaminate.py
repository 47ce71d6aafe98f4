"""Edge colour decontamination: the car's outline takes the car's colour, not the old background's.

Pixels along the outline mix car and old background (and a mask a pixel off holds a sliver of background):
on a new background they show as a halo. In a band just inside the outline, each pixel's colour is
replaced by the Gaussian-weighted mean colour of the car's interior nearby (a normalised convolution), so
the edge carries the paint, not the grass. The band is about one pixel per 640 of the photo's long side.
The interior's mean colour varies slowly, so it is computed at 1/`band` of the resolution and enlarged.
"""

from __future__ import annotations

import cv2
import numpy as np


def band_width(size: tuple[int, int]) -> int:
    return max(1, round(max(size) / 640))


def decontaminate(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 colours with the band inside `mask`'s outline refilled from the interior."""
    width = band_width(mask.shape[::-1])
    car = (mask > 0).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    inner = cv2.erode(car, kernel)
    band = (car > 0) & (inner == 0)
    if not band.any() or not inner.any():
        return rgb
    ys, xs = np.nonzero(band)
    pad = 8 * width  # the blur's reach: work on the band's box only
    y0, y1 = max(0, ys.min() - pad), min(mask.shape[0], ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(mask.shape[1], xs.max() + pad + 1)
    box = (x1 - x0, y1 - y0)
    small = (max(1, box[0] // width), max(1, box[1] // width))
    weight = cv2.resize(inner[y0:y1, x0:x1].astype(np.float32), small, interpolation=cv2.INTER_AREA)
    colour = cv2.resize(rgb[y0:y1, x0:x1] * inner[y0:y1, x0:x1, None], small, interpolation=cv2.INTER_AREA)
    total = cv2.GaussianBlur(weight, (0, 0), 2.0)
    colour = cv2.GaussianBlur(colour, (0, 0), 2.0)
    estimate = cv2.resize(colour / np.maximum(total, 1e-6)[..., None], box, interpolation=cv2.INTER_LINEAR)
    reached = cv2.resize(total, box, interpolation=cv2.INTER_LINEAR) > 1e-3
    take = band[y0:y1, x0:x1] & reached
    out = rgb.copy()
    out[y0:y1, x0:x1][take] = estimate[take]
    return out
