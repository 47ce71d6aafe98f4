"""Reading multi-band satellite patches (GeoTIFF / TIFF, NumPy .npy) into (H, W, bands) float32 arrays.

The photo path (carmask.imaging) decodes 8-bit RGB; a multi-band model takes physical values per band
(reflectance 0-1, brightness temperature in kelvin), so its input comes through here instead. One place
decides what a patch may be: TIFF (any layout tifffile reads: interleaved, planar, one page per band) or
.npy (no pickles), a floating-point dtype, a size within limits. Bands are picked by name, so a file with
eight bands can feed a model that takes four. Each refusal says what was expected.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders
NPY_MAGIC = b"\x93NUMPY"
PATCH_FORMAT_NAMES = "TIFF/GeoTIFF or NumPy .npy"


class PatchError(ValueError):
    """The bytes are not a patch this model can take (wrong format, dtype, band count or size)."""


class UnsupportedPatchError(PatchError):
    """The bytes are neither a TIFF nor a .npy file."""


class CorruptPatchError(PatchError):
    """A TIFF or .npy file that cannot be decoded."""


class PatchTooLargeError(PatchError):
    """A patch over the model's largest side: whole scenes go through carmask.clouds.scene instead."""


def _bytes_of(source: bytes | str | os.PathLike) -> bytes:
    return bytes(source) if isinstance(source, bytes | bytearray | memoryview) else Path(source).read_bytes()


def _read_tiff(data: bytes, max_values: int) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            series = tif.series[0]
            if int(np.prod(series.shape)) > max_values:
                raise PatchError(f"TIFF holds {series.shape} values, over the limit of {max_values}")
            array, axes = series.asarray(), series.axes
    except PatchError:
        raise
    except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds on corrupt files
        raise CorruptPatchError(f"corrupt or unreadable TIFF: {type(exc).__name__}: {exc}") from None
    return _to_hwc(array, axes)


def _to_hwc(array: np.ndarray, axes: str) -> np.ndarray:
    """tifffile's axes (e.g. YXS interleaved, SYX planar, IYX one page per band) to (H, W, bands)."""
    if array.ndim == 2:
        return array[..., None]
    if array.ndim != 3 or "Y" not in axes or "X" not in axes:
        raise PatchError(
            f"expected one multi-band image (height, width, bands); the TIFF has axes {axes} {array.shape}"
        )
    band_axis = next(i for i, a in enumerate(axes) if a not in "YX")
    return np.moveaxis(array, band_axis, -1)


def _read_npy(data: bytes, max_values: int) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:  # pickled object arrays land here too
        raise CorruptPatchError(f"unreadable .npy file: {exc}") from None
    if array.size > max_values:
        raise PatchError(f".npy holds {array.shape} values, over the limit of {max_values}")
    if array.ndim == 2:
        return array[..., None]
    if array.ndim != 3:
        raise PatchError(f"expected a (height, width, bands) array; the .npy file is {array.shape}")
    return array


def read_raw(source: bytes | str | os.PathLike, max_values: int = 64 * 2048 * 2048) -> np.ndarray:
    """A TIFF or .npy patch (bytes or path) as (H, W, bands) in its own numeric dtype; PatchError otherwise."""
    data = _bytes_of(source)
    if data[:4] in TIFF_MAGIC:
        array = _read_tiff(data, max_values)
    elif data[:6] == NPY_MAGIC:
        array = _read_npy(data, max_values)
    else:
        raise UnsupportedPatchError(f"not a multi-band patch ({PATCH_FORMAT_NAMES})")
    if array.dtype.kind not in "uif":
        raise PatchError(f"the patch is {array.dtype}; expected integer digital numbers or floating-point values")
    return array


def read_patch(source: bytes | str | os.PathLike, max_values: int = 64 * 2048 * 2048) -> np.ndarray:
    """A patch of physical values (floats) as (H, W, bands) float32; integers are refused (they need a
    sensor's conversion: carmask.clouds.sensors)."""
    array = read_raw(source, max_values)
    if not np.issubdtype(array.dtype, np.floating):
        raise PatchError(
            f"the patch is {array.dtype}; expected floating-point physical values (reflectance 0-1, "
            "brightness temperature in K), e.g. float32, or digital numbers with their sensor (sensor=)"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def band_indexes(wanted: Sequence[str], have: Sequence[str], count: int) -> list[int]:
    """Where each of the `wanted` bands sits in a file of `count` bands named `have`; PatchError says what is wrong."""
    have = list(have)
    if count != len(have):
        named = "" if have == list(wanted) else " (as the bands given name them)"
        raise PatchError(f"the patch has {count} bands; expected {len(have)}{named}: {', '.join(have)}")
    if len(set(have)) != len(have):
        raise PatchError(f"band names repeat: {', '.join(have)}")
    missing = [b for b in wanted if b not in have]
    if missing:
        raise PatchError(f"the model needs bands {', '.join(wanted)}; the patch lacks {', '.join(missing)}")
    return [have.index(b) for b in wanted]


def select_bands(patch: np.ndarray, wanted: Sequence[str], have: Sequence[str] | None = None) -> np.ndarray:
    """The `wanted` bands of `patch`, in the model's order. `have` names the patch's bands (default: `wanted`)."""
    indexes = band_indexes(wanted, wanted if have is None else have, patch.shape[-1])
    if indexes == list(range(patch.shape[-1])):
        return patch
    return np.ascontiguousarray(patch[..., indexes])


def check_size(patch: np.ndarray, min_side: int, max_side: int) -> None:
    h, w = patch.shape[:2]
    if max(h, w) > max_side:
        raise PatchTooLargeError(
            f"the patch is {w}x{h} pixels, over this model's largest side of {max_side}; whole scenes of any size "
            "go through `carmask-predict --model <model> scene.tif` (tiled, a GeoTIFF class map out)"
        )
    if min(h, w) < min_side:
        raise PatchError(f"the patch is {w}x{h} pixels; this model takes sides of {min_side} to {max_side} pixels")


def valid_pixels(patch: np.ndarray, nodata: float | None) -> np.ndarray:
    """(..., H, W) bool of a (..., H, W, bands) patch or batch: False where any band is NaN/inf or every band
    equals `nodata` (the scene's fill)."""
    finite = np.isfinite(patch).all(axis=-1)
    if nodata is None:
        return finite
    return finite & ~(patch == np.float32(nodata)).all(axis=-1)
