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
    """Porter-Duff "over": (rgb, alpha) on top of (under_rgb, under_alpha); float32, straight alpha."""
    a = alpha[..., None]
    b = np.asarray(under_alpha, np.float32)
    b = b[..., None] if b.ndim == 2 else b
    out_alpha = a + b * (1.0 - a)
    out_rgb = (rgb * a + np.asarray(under_rgb, np.float32) * b * (1.0 - a)) / np.maximum(out_alpha, 1e-6)
    return out_rgb, out_alpha[..., 0]


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
