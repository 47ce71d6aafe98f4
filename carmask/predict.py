"""`carmask-predict`: photos on disk to masks on disk, offline, through the ONNX model.

A multi-band model's patches go to carmask.clouds.predict instead (the scene path).

Photos (files, folders, globs) go through the model in batches; each mask is
written as a PNG at the photo's own size (or an RGBA cutout, or an overlay
preview). An unreadable photo is reported and skipped; the run goes on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from carmask import rle
from carmask.clouds.scene import Tiling
from carmask.clouds.sensors import SENSOR_NAMES, BandInput
from carmask.cutout import CutoutOptions, OptionError, Output, Shadow, Windows
from carmask.cutout import render as render_cutout
from carmask.files import (
    FORMATS,
    PATCH_FORMATS,
    PATCH_SUFFIXES,
    PHOTO_SUFFIXES,
    PredictStats,
    expand_inputs,
    output_path,
    write_atomic,
)
from carmask.glass import NoGlassError, needs_glass, windows_mask
from carmask.imaging import open_photo
from carmask.inference import DEFAULT_MODEL, Segmenter
from carmask.outputs import mask_png, overlay_jpeg, rle_record
from carmask.refine import QUALITIES
from carmask.subject import MODES as SUBJECT_MODES


@dataclass
class Outputs:
    """What one photo's files are made of: the car mask and, from a model that marks glass, its glass."""

    mask: np.ndarray  # 0/1 uint8 at the photo's size
    glass: np.ndarray | None = None  # uint8 glass probabilities at the same size
    windows: np.ndarray | None = None  # 0/1 uint8: the glass inside the mask (carmask.glass)


def render(fmt: str, photo_path: Path, out: Outputs, options: CutoutOptions | None = None) -> bytes:
    """Encode one result; cutouts and overlays need the full-resolution photo."""
    if fmt == "mask":
        return mask_png(out.mask)
    if fmt == "windows":
        return mask_png(out.windows)
    if fmt == "rle":
        record = rle_record(out.mask)
        if out.windows is not None:
            record["windows"] = rle.encode(out.windows)
        return json.dumps(record).encode()
    image = open_photo(photo_path).image
    return render_cutout(image, out.mask, options, out.glass) if fmt == "cutout" else overlay_jpeg(image, out.mask)


def _batches(paths: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), size):
        yield paths[start : start + size]


def predict_paths(
    segmenter: Segmenter,
    photos: list[Path],
    fmt: str = "mask",
    out_dir: Path | None = None,
    root: Path | None = None,
    batch_size: int = 8,
    threshold: float | None = None,
    progress: bool = True,
    options: CutoutOptions | None = None,
    quality: str = "best",
) -> PredictStats:
    """Segment `photos` and write one output each; failures are collected, never raised. `options` shape
    cutouts (and name their files: _cutout.png, .webp or .jpg); `quality` "fast" skips the learned
    refinement at the photo's resolution."""
    stats = PredictStats()
    glass = needs_glass(segmenter.glass.present, fmt, options is not None and options.windows is not Windows.opaque)
    if glass and not segmenter.glass.present:
        raise NoGlassError(f"{segmenter.manifest.name} {segmenter.manifest.version} marks no glass: "
                           f"--format {fmt} needs a model that does")  # fmt: skip
    suffixes = {**FORMATS, "cutout": "_cutout" + (options or CutoutOptions()).suffix}
    bar = tqdm(total=len(photos), unit="photo", disable=not progress)
    for batch in _batches(photos, batch_size):
        results = segmenter.segment_files(batch, threshold, seconds=stats.seconds, glass=glass, quality=quality)
        start = time.perf_counter()
        for path, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                stats.failed[str(path)] = str(result) or type(result).__name__
                bar.update(1)
                continue
            out = Outputs(*result) if glass else Outputs(result)
            if glass:
                out.windows = windows_mask(out.glass, out.mask, segmenter.glass.threshold)
            target = output_path(path, fmt, out_dir, root, suffixes)
            write_atomic(target, render(fmt, path, out, options))
            stats.written.append(target)
            bar.update(1)
        stats.seconds["encode"] += time.perf_counter() - start
    bar.close()
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="carmask-predict",
        description="Segment car photos offline. Writes <photo>_mask.png (0 background, 255 car, at the photo's "
        "size), or a cutout / overlay, beside each photo or into --out. With a multi-band model (--model "
        "models/carmask-clouds.json) it reads GeoTIFF scenes of any size (or TIFF/.npy patches) and writes "
        "<scene>_classes.tif (class indices, the scene's CRS and transform), _classes.png (--format mask) or "
        "_classes.json (--format rle), and cover.csv with each scene's cloud cover.",
    )
    parser.add_argument("inputs", nargs="+", help="photo files, folders, or glob patterns")
    parser.add_argument("--out", type=Path, help="output folder (mirrors input folders); default: beside each photo")
    parser.add_argument(
        "--format", choices=sorted(set(FORMATS) | set(PATCH_FORMATS)),
        help="photo models: mask (default), cutout, overlay, rle, windows; multi-band models: geotiff (the default "
        "for TIFF input), mask (class PNG, the default for .npy), rle",
    )  # fmt: skip
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model manifest (.json) or .onnx")
    parser.add_argument("--threshold", type=float, help="probability threshold (default: the manifest's)")
    parser.add_argument(
        "--cars",
        choices=SUBJECT_MODES,
        help="main: the photo's car only; all: every car the model marks (default: the manifest's output.subject)",
    )
    parser.add_argument(
        "--quality", choices=QUALITIES, default="best",
        help="best: the outline redrawn at the photo's resolution where the model has a learned refiner; fast: not",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    parser.add_argument(
        "--flip-tta", action=argparse.BooleanOptionalAction,
        help="average with the horizontally flipped photo (default: as the model's manifest says)",
    )  # fmt: skip
    parser.add_argument("--providers", help="comma-separated onnxruntime providers (default: CUDA if present, CPU)")
    scene = parser.add_argument_group("multi-band models (clouds)")
    scene.add_argument("--bands", help="the files' bands in order, comma-separated, ours (blue) or the sensor's (B02) "
                       "(default: the --sensor stack of that many bands, or the model's bands)")  # fmt: skip
    scene.add_argument("--sensor", choices=SENSOR_NAMES,
                       help="which band is which and how integer digital numbers become reflectance")  # fmt: skip
    scene.add_argument("--dn-scale", type=float,
                       help="integers: reflectance = DN x this + --dn-add (default: the sensor's)")  # fmt: skip
    scene.add_argument("--dn-add", type=float, help="e.g. 0 for Sentinel-2 before processing baseline 04.00")
    scene.add_argument("--tile", type=int, default=Tiling.tile,
                       help="scene tiles' side in pixels (0: the model's largest side, at most 512)")  # fmt: skip
    scene.add_argument(
        "--tile-overlap",
        type=int,
        default=Tiling.overlap,
        help="pixels shared by neighbouring tiles (default: an eighth of the tile)",
    )
    cut = parser.add_argument_group("cutouts (--format cutout)")
    cut.add_argument("--windows", choices=list(Windows), default="opaque",
                     help="the car's glass: opaque, transparent (the background shows through) or tinted; the last "
                     "two need a model that marks glass")  # fmt: skip
    cut.add_argument("--shadow", choices=list(Shadow), default="none", help="contact: a soft shadow under the car")
    cut.add_argument("--bg-color", help="put the car on this colour, RRGGBB or RRGGBBAA hex (default: transparent)")
    cut.add_argument("--crop", action="store_true", help="frame the result to the car's box plus --crop-margin")
    cut.add_argument("--crop-margin", type=float, default=CutoutOptions.crop_margin,
                     help="margin per side, a fraction of the car's box (0 to 0.5)")  # fmt: skip
    cut.add_argument("--output", choices=list(Output), default="png",
                     help="the cutout's file type (jpeg only with an opaque --bg-color)")  # fmt: skip
    cut.add_argument("--decontaminate", action="store_true", help="edge pixels take the car's colour (no halo)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        options = CutoutOptions(Windows(args.windows), Shadow(args.shadow), args.bg_color, args.crop,
                                args.crop_margin, Output(args.output), args.decontaminate)  # fmt: skip
    except OptionError as exc:
        parser.error(str(exc))

    from carmask.clouds.segmenter import PatchSegmenter
    from carmask.segmenters import open_segmenter

    providers = args.providers.split(",") if args.providers else None
    segmenter = open_segmenter(args.model.with_suffix(".json"), providers, args.threads, args.flip_tta)
    multi_band = isinstance(segmenter, PatchSegmenter)
    photos = expand_inputs(args.inputs, PATCH_SUFFIXES if multi_band else PHOTO_SUFFIXES)
    if not photos:
        parser.error(f"no {'patches' if multi_band else 'photos'} found in the given inputs")
    root = Path(args.inputs[0]) if len(args.inputs) == 1 and Path(args.inputs[0]).is_dir() else None
    if multi_band:
        stats = _predict_scenes(parser, args, segmenter, photos, root)
    else:
        if args.format not in (None, *FORMATS):
            parser.error(f"--format {args.format} is for multi-band models; photo models write {sorted(FORMATS)}")
        args.format = args.format or "mask"
        segmenter.cars = args.cars
        try:
            stats = predict_paths(
                segmenter, photos, args.format, args.out, root, args.batch_size, args.threshold, not args.quiet,
                options, args.quality,
            )  # fmt: skip
        except NoGlassError as exc:
            parser.error(str(exc))
    print(f"{len(stats.written)} written, {len(stats.failed)} failed", file=sys.stderr)
    for path, reason in stats.failed.items():
        print(f"  failed: {path}: {reason}", file=sys.stderr)
    return 1 if stats.failed else 0


def _predict_scenes(parser, args, segmenter, paths: list[Path], root: Path | None) -> PredictStats:
    from carmask.clouds.patches import PatchError
    from carmask.clouds.predict import predict_patches

    fmt = args.format
    if fmt is not None and fmt not in PATCH_FORMATS:
        parser.error(f"--format {fmt} is for photo models; {segmenter.manifest.name} writes {sorted(PATCH_FORMATS)}")
    try:
        band_input = BandInput.parse(args.sensor, args.bands, args.dn_scale, args.dn_add)
        tiling = Tiling(args.tile, args.tile_overlap)
    except (PatchError, ValueError) as exc:
        parser.error(str(exc))
    stats, table = predict_patches(segmenter, paths, fmt, args.out, root, band_input, not args.quiet, tiling)
    if table is not None:
        print(f"cover per scene: {table}", file=sys.stderr)
    print(f"peak RSS {peak_rss_mb():.0f} MB", file=sys.stderr)
    return stats


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


if __name__ == "__main__":
    sys.exit(main())
