"""Decoding uploaded or on-disk photos into RGB Pillow images, safely.

One place decides how a photo is opened: which formats (an allow-list:
Pillow tries no other decoder, so an EPS upload never reaches Ghostscript and
TGA, PCX, SGI, ... are refused), EXIF orientation, colour modes (CMYK,
palette, 16-bit, alpha), the decompression-bomb limit, and JPEG draft decoding
(Pillow decodes a JPEG at 1/2, 1/4 or 1/8 scale for nearly free when only a
small version is needed). HEIC/HEIF (iPhone photos) decode through
pillow-heif, AVIF through Pillow itself.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

try:  # iPhone photos; libheif applies the HEIF rotation itself and clears the EXIF tag
    from pillow_heif import register_heif_opener

    register_heif_opener()
    _HEIF = ("HEIF",)
except ImportError:  # pragma: no cover - pillow-heif is a core dependency
    _HEIF = ()

# The formats a photo may be in (Pillow's names). TIFF is for multi-band models only: they pass `formats`.
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "AVIF", *_HEIF)
FORMAT_NAMES = "JPEG, PNG, WebP, BMP, AVIF" + (", HEIC/HEIF" if _HEIF else "")

# Orientations 5-8 rotate by 90 degrees, so width and height swap.
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION_TAG = 0x0112


class ImageDecodeError(ValueError):
    """The bytes are not an image we can read (unknown format or corrupt)."""


class UnsupportedImageError(ImageDecodeError):
    """The bytes are not in any image format Pillow recognises."""


class ImageTooLargeError(ValueError):
    """The image has more pixels than allowed (decompression-bomb guard)."""


@dataclass(frozen=True)
class Photo:
    """A decoded photo: RGB pixels (possibly reduced) and the photo's true size."""

    image: Image.Image  # RGB, EXIF-oriented; may be smaller than `size` (draft decode)
    size: tuple[int, int]  # (width, height) of the full-resolution, oriented photo


def open_photo(
    source: bytes | str | os.PathLike,
    *,
    max_pixels: int | None = None,
    draft_size: tuple[int, int] | None = None,
    formats: tuple[str, ...] = PHOTO_FORMATS,
) -> Photo:
    """Decode a photo to RGB with EXIF orientation applied.

    `draft_size` lets JPEGs decode at a reduced scale that is still at least that
    large; `size` always reports the full-resolution (oriented) dimensions. Only
    `formats` are tried; anything else is an UnsupportedImageError.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else Path(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(stream, formats=list(formats))
            full_w, full_h = img.size
            if max_pixels is not None and full_w * full_h > max_pixels:
                raise ImageTooLargeError(
                    f"image is {full_w}x{full_h} = {full_w * full_h} pixels, over the limit of {max_pixels}"
                )
            orientation = img.getexif().get(_EXIF_ORIENTATION_TAG, 1)
            if draft_size is not None and img.format == "JPEG":
                # Ask for the target size in the stored (un-rotated) frame.
                dw, dh = draft_size[::-1] if orientation in _SWAPPING_ORIENTATIONS else draft_size
                img.draft("RGB", (dw, dh))
            img.load()
    except (ImageTooLargeError, FileNotFoundError, IsADirectoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(str(exc)) from None
    except UnidentifiedImageError:
        raise UnsupportedImageError(f"not an accepted image format ({FORMAT_NAMES})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"corrupt or truncated image: {exc}") from None
    img = ImageOps.exif_transpose(img)
    if orientation in _SWAPPING_ORIENTATIONS:
        full_w, full_h = full_h, full_w
    return Photo(image=to_rgb(img), size=(full_w, full_h))


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode (CMYK, P, LA, RGBA, I;16, ...) to 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale the used range to 8 bits, don't clip.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite on white: studio photos have light backgrounds.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")
