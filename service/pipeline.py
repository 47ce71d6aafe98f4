"""Per-photo work of the service: bytes -> model input -> mask -> response body.

Runs in worker threads, off the event loop. Decoding, the model call and
encoding all release the GIL for most of their time, so a few workers keep
both cores busy.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
from PIL import Image

from carmask import rle
from carmask.cutout import CutoutOptions, Windows
from carmask.cutout import render as render_cutout
from carmask.cutout.render import crop_region
from carmask.files import FORMATS
from carmask.glass import needs_glass, windows_mask
from carmask.imaging import Photo, open_photo
from carmask.inference import Segmenter
from carmask.outputs import mask_png, probability_png, rle_record
from carmask.preprocess import load_for_model, resize_image, threshold_u8, upsample_probabilities
from service.errors import classify


class MaskFormat(StrEnum):
    png = "png"
    rle = "rle"
    cutout = "cutout"
    probabilities = "probabilities"  # 8-bit greyscale PNG: 255 x the car probability (a page re-thresholds it)
    windows = "windows"  # the car's glass as a PNG mask (models with a glass output)


class BatchFormat(StrEnum):
    json = "json"
    zip = "zip"


class MaskSize(StrEnum):
    original = "original"
    model = "model"


class Quality(StrEnum):
    """best: every refinement stage the model's manifest names; fast: none at the photo's resolution."""

    best = "best"
    fast = "fast"


class Cars(StrEnum):
    """Which cars a photo's mask covers (carmask.subject): the photo's main car, or every car it shows."""

    main = "main"
    all = "all"


@dataclass
class Prepared:
    """A decoded photo ready for the model."""

    name: str
    data: bytes
    pixels: np.ndarray  # (h, w, 3) uint8 at the model's size
    photo: Photo
    segmenter: Segmenter  # the model it is for: how the output comes back to the photo (letterbox, subject)
    full: Image.Image | None = None  # the photo decoded at its own size, once something needed it

    def full_image(self) -> Image.Image:
        """The photo at its own size (its pixel count passed the limit at `prepare`), decoded once for the
        refinement and the cutout alike."""
        if self.full is None:
            self.full = open_photo(self.data).image
        return self.full


@dataclass
class Result:
    name: str
    mask: np.ndarray  # 0/1 uint8 at the requested size
    width: int  # the mask's size
    height: int
    probabilities: np.ndarray  # uint8 0..255 at the same size; the mask is probabilities > 255 x threshold
    glass: np.ndarray | None = None  # uint8 0..255 glass probabilities at the same size, when asked for
    windows: np.ndarray | None = None  # 0/1 uint8: the glass inside the mask (carmask.glass)


class Stopwatch:
    """Seconds per stage ("decode", "model", "encode"), summed over a request's photos."""

    def __init__(self, timings: dict[str, float] | None = None):
        self.timings = timings if timings is not None else {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def prepare(name: str, data: bytes, segmenter: Segmenter, max_pixels: int, watch: Stopwatch) -> Prepared:
    with watch.stage("decode"):
        pixels, photo = load_for_model(data, segmenter.fit, max_pixels)
    return Prepared(name, data, pixels, photo, segmenter)


def run_model(
    segmenter: Segmenter, prepared: list[Prepared], watch: Stopwatch, glass: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Car probabilities, and with `glass` the glass probabilities, for a batch of prepared photos."""
    with watch.stage("model"):
        return segmenter.outputs(np.stack([p.pixels for p in prepared]), glass)


def to_mask(
    prepared: Prepared,
    prob: np.ndarray,
    threshold: float,
    size: MaskSize,
    watch: Stopwatch,
    cars: Cars | None = None,
    glass: np.ndarray | None = None,
    quality: Quality = Quality.best,
) -> Result:
    """`cars` None: the model's manifest says which cars the mask covers. `glass`: the model's glass output
    for this photo, which adds the glass probabilities and windows mask to the result. A mask at the photo's
    size is refined there as the manifest says, unless `quality` is fast; one at the model's size is not."""
    seg = prepared.segmenter
    with watch.stage("encode"):  # post-processing counts with the encoding of the answer
        prob = seg.content(prob, prepared.photo.size, threshold, cars, prepared.pixels)
        target = prob.shape[::-1] if size is MaskSize.model else prepared.photo.size
    if size is MaskSize.model:
        prob_u8 = upsample_probabilities(prob, target)
    else:
        with watch.stage("refine"):
            source = prepared.data
            if seg.refines(quality.value):
                source = seg.refine_image(prepared.data, target)
                if source.size == target:
                    prepared.full = source  # the photo at its own size: the cutout reuses this decode
            prob_u8 = seg.at_photo(prob, target, source, quality.value)
    with watch.stage("encode"):
        mask = threshold_u8(prob_u8, threshold)
        result = Result(prepared.name, mask, mask.shape[1], mask.shape[0], prob_u8)
        if glass is not None:
            result.glass = upsample_probabilities(seg.glass_content(glass, prepared.photo.size), target)
            result.windows = windows_mask(result.glass, mask, seg.glass.threshold)
    return result


def cutout(prepared: Prepared, result: Result, options: CutoutOptions | None = None) -> bytes:
    """The cutout at the mask's size as `options` say; decodes the photo at full resolution."""
    if (result.width, result.height) == prepared.photo.size:
        image = prepared.full_image()
    else:
        image = Image.fromarray(resize_image(prepared.photo.image, (result.width, result.height)))
    return render_cutout(image, result.mask, options, result.glass)


def segment_one(
    seg: Segmenter,
    name: str,
    data: bytes,
    fmt: MaskFormat,
    thr: float,
    size: MaskSize,
    max_pixels: int,
    timings: dict | None = None,
    cars: Cars | None = None,
    options: CutoutOptions | None = None,
    quality: Quality = Quality.best,
) -> tuple[bytes | dict, Result]:
    """One photo to its response body (PNG bytes, or the RLE entry) and the mask; `options` shape a cutout."""
    watch = Stopwatch(timings)
    prepared = prepare(name, data, seg, max_pixels, watch)
    see_through = options is not None and options.windows is not Windows.opaque
    probs, glass = run_model(seg, [prepared], watch, needs_glass(seg.glass.present, fmt, see_through))
    result = to_mask(prepared, probs[0], thr, size, watch, cars, None if glass is None else glass[0], quality)
    with watch.stage("encode"):
        if fmt is MaskFormat.rle:
            body = rle_entry(result)
        elif fmt is MaskFormat.cutout:
            body = cutout(prepared, result, options)
        elif fmt is MaskFormat.probabilities:
            body = probability_png(result.probabilities)
        elif fmt is MaskFormat.windows:
            body = mask_png(result.windows)
        else:
            body = mask_png(result.mask)
    return body, result


def segment_many(
    seg: Segmenter,
    uploads: list[tuple[str, bytes | Exception]],
    thr: float,
    size: MaskSize,
    max_pixels: int,
    batch_size: int,
    timings: dict | None = None,
    cars: Cars | None = None,
    glass: bool = False,
    quality: Quality = Quality.best,
) -> tuple[list[Result | dict], list[Result]]:
    """Decode all, run the model in batches, post-process; a bad photo fails alone (a dict entry). `glass`:
    add each photo's windows (the model must have a glass output)."""
    watch = Stopwatch(timings)
    entries: list[Result | dict | None] = [None] * len(uploads)
    prepared: list[tuple[int, Prepared]] = []
    for i, (name, data) in enumerate(uploads):
        try:
            if isinstance(data, Exception):
                raise data
            prepared.append((i, prepare(name, data, seg, max_pixels, watch)))
        except Exception as exc:  # noqa: BLE001 - reported in this photo's entry
            err = classify(exc)
            entries[i] = {"name": name, "error": err.code, "detail": err.detail, "status": err.status}
    results: list[Result] = []
    for start in range(0, len(prepared), batch_size):
        chunk = prepared[start : start + batch_size]
        probs, glasses = run_model(seg, [p for _, p in chunk], watch, glass)
        for k, (i, p) in enumerate(chunk):
            entries[i] = to_mask(p, probs[k], thr, size, watch, cars, None if glasses is None else glasses[k], quality)
            results.append(entries[i])
    return entries, results


def output_size(result: Result, fmt: MaskFormat, options: CutoutOptions | None) -> tuple[int, int]:
    """(width, height) of the image answered: the mask's, or a cropped cutout's frame."""
    if fmt is MaskFormat.cutout and options is not None and options.crop:
        x0, y0, x1, y1 = crop_region(result.mask, options)
        return x1 - x0, y1 - y0
    return result.width, result.height


def rle_entry(result: Result) -> dict:
    """The JSON of one mask: size, RLE, coverage; and the windows' RLE when the model marks glass."""
    entry = {"name": result.name, **rle_record(result.mask)}
    if result.windows is not None:
        entry["windows"] = rle.encode(result.windows)
    return entry


def zip_of_masks(results: list[Result], errors: list[dict]) -> bytes:
    """PNG masks named after the photos, plus errors.json when some photos failed."""
    buf = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # PNGs are already compressed
        for result in results:
            stem, n = Path(result.name).stem or "photo", 1
            name = stem + FORMATS["mask"]
            while name in used:  # two uploads with the same file name keep both masks
                n += 1
                name = f"{stem}_{n}{FORMATS['mask']}"
            used.add(name)
            zf.writestr(name, mask_png(result.mask))
        if errors:
            zf.writestr("errors.json", json.dumps(errors, indent=1))
    return buf.getvalue()
