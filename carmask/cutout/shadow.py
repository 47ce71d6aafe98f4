"""A contact shadow: the soft dark patch on the ground where the car stands, drawn from its mask.

The ground line is the mask's lowest row. A flat ellipse as wide as the car, centred on that line,
darkens the ground under the body; the columns where the car reaches the ground (wheels, low bumpers)
darken it more. Both are blurred in proportion to the car's width. It lies behind the car: only what the
car does not cover shows (below the car and between the wheels).
"""

from __future__ import annotations

import cv2
import numpy as np

from carmask.cutout.frame import car_box

OPACITY = 0.55  # the shadow's darkest alpha, under the wheels
BODY_OPACITY = 0.6  # of OPACITY: the ellipse under the body
HEIGHT = 0.03  # the ellipse's half-height, of the car's width
GROUND = 0.04  # a column whose lowest car pixel is this close to the ground line (of the car's height) touches it
BLUR = 0.012  # the blur's sigma, of the car's width


def _sigma(width: int) -> float:
    return max(0.8, BLUR * width)


def _reach(width: int) -> int:
    return round(HEIGHT * width + 3 * _sigma(width))


def reach(mask: np.ndarray) -> int:
    """How far below the car's lowest row the shadow shows (0 for an empty mask)."""
    box = car_box(mask)
    return 0 if box is None else _reach(box[2] - box[0])


def contact_shadow(mask: np.ndarray) -> tuple[slice, np.ndarray]:
    """The rows the shadow lies in, and its alpha there ((rows, W) float32 in [0, OPACITY]); only those
    rows are drawn and composited. An empty slice for an empty mask."""
    box = car_box(mask)
    if box is None:
        return slice(0, 0), np.zeros((0, mask.shape[1]), np.float32)
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    ground = y1 - 1
    half = max(1, round(HEIGHT * width))
    sigma = _sigma(width)
    rows = slice(max(0, ground - half - round(3 * sigma)), min(mask.shape[0], ground + _reach(width) + 1))
    shadow = np.zeros((rows.stop - rows.start, mask.shape[1]), np.float32)
    centre = ((x0 + x1) // 2, ground - rows.start)
    cv2.ellipse(shadow, centre, (max(1, width // 2), half), 0, 0, 360, BODY_OPACITY, -1)
    lowest = mask.shape[0] - 1 - np.argmax(mask[::-1] > 0, axis=0)  # per column, its lowest car row
    touches = (mask > 0).any(0) & (lowest >= ground - GROUND * height)
    band = slice(max(0, ground - half // 2 - rows.start), ground + half // 2 + 1 - rows.start)
    shadow[band, touches] = 1.0
    return rows, np.clip(cv2.GaussianBlur(shadow, (0, 0), sigma), 0.0, 1.0) * OPACITY
