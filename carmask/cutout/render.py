"""One cutout from the photo, its car mask and the glass probabilities, as `CutoutOptions` say."""

from __future__ import annotations

import numpy as np
from PIL import Image

from carmask.cutout import frame
from carmask.cutout.alpha import apply_windows
from carmask.cutout.decontaminate import decontaminate
from carmask.cutout.encode import encode, over
from carmask.cutout.options import CutoutOptions, Shadow
from carmask.cutout.shadow import contact_shadow
from carmask.cutout.shadow import reach as shadow_reach
from carmask.outputs import cutout_png


def crop_region(mask: np.ndarray, options: CutoutOptions) -> tuple[int, int, int, int]:
    """The framed region (x0, y0, x1, y1) in the mask's pixels, with room below for the shadow if drawn."""
    below = shadow_reach(mask) if options.shadow is Shadow.contact else 0
    return frame.crop_region(mask, options.crop_margin, below)


def render(
    image: Image.Image, mask: np.ndarray, options: CutoutOptions | None = None, glass_u8: np.ndarray | None = None
) -> bytes:
    """The encoded cutout at the mask's size (`image` must be that size); `glass_u8`, 8-bit glass
    probabilities at the same size, is needed for see-through or tinted windows."""
    options = options or CutoutOptions()
    if options.plain:
        return cutout_png(image, mask)
    if image.size != mask.shape[::-1]:
        raise ValueError(f"photo is {image.size}, mask is {mask.shape[::-1]}")
    rgb, alpha = apply_windows(np.asarray(image.convert("RGB")), mask, glass_u8, options.windows)
    if options.decontaminate:
        rgb = decontaminate(rgb, mask)
    if options.crop:
        region = crop_region(mask, options)
        rgb, alpha, mask = (frame.take(a, region) for a in (rgb, alpha, mask))
    if options.shadow is Shadow.contact:
        rows, shadow = contact_shadow(mask)
        over(rgb[rows], alpha[rows], (0.0, 0.0, 0.0), shadow)  # in place, on the shadow's rows alone
    if options.background is not None:
        *colour, opacity = options.background
        rgb, alpha = over(rgb, alpha, colour, opacity / 255.0)
    return encode(rgb, alpha, options.output, opaque=options.background is not None and options.background[3] == 255)
