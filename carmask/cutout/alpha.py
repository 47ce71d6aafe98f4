"""The cutout's alpha: 1 on the car, 0 off it; on its glass, see-through or tinted as asked.

The glass weight ramps from 0 to 1 as the glass probability goes from 0.25 to 0.75, so a window's edge
fades instead of stepping. Transparent glass keeps a fifth of its pixels (a hint of reflection); tinted
glass is darkened and kept two-thirds opaque.
"""

from __future__ import annotations

import numpy as np

from carmask.cutout.options import Windows

TRANSPARENT_ALPHA = 0.2
TINTED_ALPHA = 0.65
TINT = np.array([18, 20, 24], np.float32)  # the colour tinted glass darkens towards
TINT_STRENGTH = 0.6


def glass_weight(glass_u8: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much each car pixel is glass."""
    weight = np.clip((glass_u8.astype(np.float32) * np.float32(1 / 255) - 0.25) * 2.0, 0.0, 1.0)
    return weight * (mask > 0)


def apply_windows(
    rgb: np.ndarray, mask: np.ndarray, glass_u8: np.ndarray | None, windows: Windows
) -> tuple[np.ndarray, np.ndarray]:
    """(rgb float32 (H, W, 3), alpha float32 (H, W) in [0, 1]) of the car with its glass as `windows` says."""
    alpha = (mask > 0).astype(np.float32)
    rgb = rgb.astype(np.float32)
    if windows is Windows.opaque:
        return rgb, alpha
    if glass_u8 is None:
        raise ValueError("see-through or tinted windows need the model's glass output")
    weight = glass_weight(glass_u8, mask)
    if windows is Windows.transparent:
        return rgb, alpha * (1.0 - (1.0 - TRANSPARENT_ALPHA) * weight)
    tint = (TINT_STRENGTH * weight)[..., None]
    return rgb * (1.0 - tint) + TINT * tint, alpha * (1.0 - (1.0 - TINTED_ALPHA) * weight)
