"""Whole scenes: a GeoTIFF of any size through a patch model in bounded memory, to a georeferenced class map.

rasterio reads the scene one strip of tile rows at a time (windowed reads of the model's bands only);
tiles overlap and their class probabilities are blended with weights that fall towards each tile's
edges, so no seam shows where tiles meet; a strip's rows are written as soon as no later tile can touch
them. Memory holds one strip (tile height x scene width) of input and probabilities, whatever the scene's
size, and GDAL's block cache is capped. The class map (uint8, FILL where the scene has no data) keeps the
input's CRS, transform and size, with the classes' colours as its colour table and their names as tags.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from carmask.clouds.cover import FILL, class_counts, summary_of_counts
from carmask.clouds.patches import PatchError, band_indexes, valid_pixels
from carmask.clouds.segmenter import PatchSegmenter
from carmask.clouds.sensors import BandInput

GDAL_CACHE_MB = 64


@dataclass(frozen=True)
class Tiling:
    tile: int = 0  # tile side in pixels; 0: the model's largest side, at most 512
    overlap: int | None = None  # pixels shared by neighbouring tiles; None: an eighth of the tile (64 of 512)
    batch: int = 1  # tiles per model call (on CPU a batch is no faster, and holds batch x the activations)

    def __post_init__(self) -> None:
        if self.tile < 0 or (self.overlap or 0) < 0 or self.batch < 1:
            raise ValueError(f"tiling needs tile >= 0, overlap >= 0 and batch >= 1, got {self}")

    def for_model(self, max_side: int) -> Tiling:
        """This tiling with its tile side settled for a model taking sides up to `max_side` (0: any)."""
        tile = self.tile or min(512, max_side or 512)
        if max_side and tile > max_side:
            raise ValueError(f"tile {tile} is over the model's largest side {max_side}")
        overlap = tile // 8 if self.overlap is None else self.overlap
        if overlap >= tile // 2:
            raise ValueError(f"tile overlap {overlap} must be under half the tile ({tile})")
        return Tiling(tile, overlap, self.batch)


def require_rasterio():
    """rasterio, or an error that says how to install it (the `scenes` extra)."""
    try:
        import rasterio
    except ImportError:
        raise PatchError("whole scenes need rasterio: pip install 'carmask[scenes]' (rasterio 1.4)") from None
    return rasterio


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile offsets along one axis: every tile - overlap pixels, the last one flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    return [*starts, length - tile]


def blend_weights(height: int, width: int, overlap: int) -> np.ndarray:
    """(h, w) weights rising linearly over `overlap` pixels from each edge, never 0 (scene borders need them)."""

    def ramp(n: int) -> np.ndarray:
        d = np.minimum(np.arange(n), np.arange(n)[::-1]).astype(np.float32)
        return np.minimum(1.0, (d + 1.0) / (overlap + 1.0)) if overlap else np.ones(n, np.float32)

    return np.outer(ramp(height), ramp(width))


def scene_band_input(names: list[str], band_input: BandInput, descriptions: tuple[str | None, ...]) -> BandInput:
    """A GeoTIFF that names its bands (band descriptions such as B02 or blue) needs no bands=: use its names."""
    if band_input.bands is not None or not all(descriptions):
        return band_input
    canonical = tuple(band_input.sensor.canonical(d) if band_input.sensor else d.lower() for d in descriptions)
    if not set(names) <= set(canonical):
        return band_input  # descriptions that are not band names: the stack rule decides
    return replace(band_input, bands=canonical)


def segment_scene(
    seg: PatchSegmenter,
    source: str | os.PathLike,
    target: str | os.PathLike,
    band_input: BandInput | None = None,
    tiling: Tiling | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Classify the GeoTIFF `source` into the GeoTIFF `target`; returns the scene's cover summary.

    `progress(rows)` is called as rows are finished. PatchError for a file this model cannot take.
    """
    rasterio = require_rasterio()
    from rasterio.errors import RasterioIOError

    band_input = band_input or BandInput()
    spec = seg.manifest.input
    tiling = (tiling or Tiling()).for_model(spec.max_side)
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), rasterio.open(source) as src:
            band_input = scene_band_input(seg.band_names, band_input, src.descriptions)
            names = band_input.names(src.count, seg.band_names)
            indexes = [i + 1 for i in band_indexes(seg.band_names, names, src.count)]  # rasterio's are 1-based
            return _run(seg, src, Path(target), band_input, indexes, tiling, progress)
    except RasterioIOError as exc:
        raise PatchError(f"{source}: not a readable GeoTIFF ({exc})") from None


def _run(seg, src, target: Path, band_input: BandInput, indexes: list[int], tiling: Tiling, progress) -> dict:
    """Strips of tile rows, top to bottom: read, classify tile by tile, blend, write what is final."""
    import rasterio
    from rasterio.windows import Window

    h, w = src.height, src.width
    classes = seg.manifest.output.classes
    rows, cols = tile_starts(h, tiling.tile, tiling.overlap), tile_starts(w, tiling.tile, tiling.overlap)
    tile_h, tile_w = min(tiling.tile, h), min(tiling.tile, w)
    # The strip is read as the model's bands only, in the model's order: name them so.
    model_order = replace(band_input, bands=tuple(seg.band_names))
    blender = StripBlender(tile_h, w, len(classes), blend_weights(tile_h, tile_w, tiling.overlap))
    profile = {
        "driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": "uint8", "nodata": FILL,
        "crs": src.crs, "transform": src.transform, "tiled": True, "blockxsize": 256, "blockysize": 256,
        "compress": "deflate", "BIGTIFF": "IF_SAFER",
    }  # fmt: skip
    partial = target.with_name(target.name + ".partial")  # renamed when complete: no half-written class maps
    try:
        with rasterio.open(partial, "w", **profile) as dst:
            dst.write_colormap(1, {c["index"]: tuple(c["colour"]) for c in classes})
            dst.update_tags(**{f"class_{c['index']}": c["name"] for c in classes}, fill=str(FILL))
            for y in rows:
                blender.advance_to(y, dst)
                if progress:
                    progress(y)
                raw = src.read(indexes, window=Window(0, y, w, tile_h))  # (bands, tile_h, w)
                strip = seg.bands_of(np.moveaxis(raw, 0, -1), model_order, src.nodata)
                valid = valid_pixels(strip, seg.manifest.input.nodata)  # once per strip, not per tile
                for start in range(0, len(cols), tiling.batch):
                    xs = cols[start : start + tiling.batch]
                    tiles = np.stack([strip[:, x : x + tile_w] for x in xs])
                    for x, prob in zip(xs, seg.probabilities(tiles), strict=True):
                        blender.add(x, prob, valid[:, x : x + tile_w])
            blender.advance_to(h, dst)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    if progress:
        progress(h)
    m = seg.manifest.output
    return summary_of_counts(blender.counts, m.class_names, m.groups)


class StripBlender:
    """Weighted class probabilities of the rows [top, top + height) that tiles still reach; rows above the next
    strip's top are final: their class map is written and counted, the rest carried up."""

    def __init__(self, height: int, width: int, classes: int, weights: np.ndarray):
        self.weights, self.top = weights, 0
        self.acc = np.zeros((height, width, classes), np.float32)  # sum of probability x weight
        self.wsum = np.zeros((height, width), np.float32)
        self.valid = np.zeros((height, width), bool)
        self.counts = np.zeros(classes + 1, np.int64)  # per class, then fill

    def add(self, x: int, prob: np.ndarray, valid: np.ndarray) -> None:
        """One tile's probabilities (tile_h, tile_w, classes) at column x of the current strip."""
        w = prob.shape[1]
        self.acc[:, x : x + w] += prob * self.weights[..., None]
        self.wsum[:, x : x + w] += self.weights
        self.valid[:, x : x + w] |= valid

    def advance_to(self, y: int, dst) -> None:
        """Write rows [top, y) (no later tile reaches them) and move the strip's top to y."""
        from rasterio.windows import Window

        n = min(y - self.top, len(self.acc))
        if n <= 0:
            return
        class_map = (self.acc[:n] / np.maximum(self.wsum[:n], 1e-6)[..., None]).argmax(axis=-1).astype(np.uint8)
        class_map[~self.valid[:n]] = FILL
        self.counts += class_counts(class_map, len(self.counts) - 1)
        dst.write(class_map[None], window=Window(0, self.top, class_map.shape[1], n))
        for a in (self.acc, self.wsum, self.valid):  # carry the rows the next strip overlaps
            a[: len(a) - n] = a[n:]
            a[len(a) - n :] = 0
        self.top += n
