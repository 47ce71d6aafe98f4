"""Turning a mask into what users download: mask PNG, RGBA cutout, overlay preview."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from carmask import rle

# zlib level 1: masks are long runs, so fast compression is nearly as small as the best.
PNG_COMPRESS_LEVEL = 1


def mask_png(mask: np.ndarray) -> bytes:
    """A single-channel PNG: 0 background, 255 car."""
    buf = io.BytesIO()
    Image.fromarray((mask > 0).astype(np.uint8) * 255, "L").save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def probability_png(prob_u8: np.ndarray) -> bytes:
    """A single-channel PNG of 8-bit probabilities (255 = certainly car); mask = value > 255 x threshold."""
    buf = io.BytesIO()
    Image.fromarray(prob_u8.astype(np.uint8, copy=False), "L").save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def cutout_png(image: Image.Image, mask: np.ndarray) -> bytes:
    """The photo as RGBA with the background transparent."""
    if image.size != mask.shape[::-1]:
        raise ValueError(f"photo is {image.size}, mask is {mask.shape[::-1]}")
    rgba = image.convert("RGB")
    rgba.putalpha(Image.fromarray((mask > 0).astype(np.uint8) * 255, "L"))
    buf = io.BytesIO()
    rgba.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def overlay_jpeg(image: Image.Image, mask: np.ndarray, colour=(255, 0, 80), alpha: float = 0.45) -> bytes:
    """A preview: the photo with the car tinted, as JPEG."""
    tint = Image.new("RGB", image.size, colour)
    blend = Image.blend(image.convert("RGB"), tint, alpha)
    out = image.convert("RGB").copy()
    out.paste(blend, mask=Image.fromarray((mask > 0).astype(np.uint8) * 255, "L"))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def coverage(mask: np.ndarray) -> float:
    """Share of the photo's pixels that are car."""
    return float(np.count_nonzero(mask)) / mask.size


def rle_record(mask: np.ndarray) -> dict:
    """The JSON form of a mask used by the service and the files on disk: size, Kaggle RLE, coverage."""
    return {
        "width": int(mask.shape[1]),
        "height": int(mask.shape[0]),
        "rle": rle.encode(mask),
        "coverage": round(coverage(mask), 6),
    }
