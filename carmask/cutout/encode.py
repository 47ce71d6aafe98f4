"""The cutout's last steps: the car over its shadow, over the background colour, encoded."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from carmask.cutout.options import Output

PNG_COMPRESS_LEVEL = 1
WEBP_QUALITY = 90
JPEG_QUALITY = 92


def over(rgb: np.ndarray, alpha: np.ndarray, under_rgb, under_alpha) -> tuple[np.ndarray, np.ndarray]:
    """Porter-Duff "over": (rgb, alpha) on top of (under_rgb, under_alpha: an array like alpha, or one
    value); float32, straight alpha. In place on `rgb` and `alpha`, which it returns."""
    colour = np.asarray(under_rgb, np.float32)
    if np.ndim(under_alpha) == 0 and float(under_alpha) == 1.0:  # an opaque background: no division
        rgb -= colour
        rgb *= alpha[..., None]
        rgb += colour
        alpha[:] = 1.0
        return rgb, alpha
    b = np.asarray(under_alpha, np.float32)
    below = b * (1.0 - alpha)
    rgb *= alpha[..., None]
    rgb += colour * below[..., None]
    alpha += below
    rgb /= np.maximum(alpha, 1e-6)[..., None]
    return rgb, alpha


def encode(rgb: np.ndarray, alpha: np.ndarray, output: Output, opaque: bool = False) -> bytes:
    """float32 colours and alpha to the file: RGB when `opaque` (an opaque background; JPEG always is), RGBA
    otherwise, even where every pixel happens to be opaque (a tight crop), so clients see one mode."""
    pixels = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    alpha_u8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if output is Output.jpeg or opaque:
        image = Image.fromarray(pixels, "RGB")
    else:
        image = Image.fromarray(np.dstack([pixels, alpha_u8]), "RGBA")
    buf = io.BytesIO()
    if output is Output.png:
        image.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif output is Output.webp:
        image.save(buf, "WEBP", quality=WEBP_QUALITY, method=2)
    else:
        image.save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()
