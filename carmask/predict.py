"""`carmask-predict`: photos on disk to masks on disk, offline, through the ONNX model (patches: patch_predict).

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from carmask.files import (
    FORMATS,
    PATCH_FORMATS,
    PATCH_SUFFIXES,
    PHOTO_SUFFIXES,
    expand_inputs,
    output_path,
    write_atomic,
)
from carmask.imaging import open_photo
from carmask.inference import DEFAULT_MODEL, Segmenter
from carmask.outputs import cutout_png, mask_png, overlay_jpeg, rle_record
from carmask.patches import parse_band_names
from carmask.subject import MODES as SUBJECT_MODES


def render(fmt: str, photo_path: Path, mask: np.ndarray) -> bytes:
    """Encode one result; cutouts and overlays need the full-resolution photo."""
    if fmt == "mask":
        return mask_png(mask)
    if fmt == "rle":
        return json.dumps(rle_record(mask)).encode()
    image = open_photo(photo_path).image
    return cutout_png(image, mask) if fmt == "cutout" else overlay_jpeg(image, mask)


@dataclass
class PredictStats:
    written: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(
        default_factory=lambda: {"decode": 0.0, "model": 0.0, "upsample": 0.0, "encode": 0.0}
    )


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
) -> PredictStats:
    """Segment `photos` and write one output each; failures are collected, never raised."""
    stats = PredictStats()
    bar = tqdm(total=len(photos), unit="photo", disable=not progress)
    for batch in _batches(photos, batch_size):
        results = segmenter.segment_files(batch, threshold, seconds=stats.seconds)
        start = time.perf_counter()
        for path, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                stats.failed[str(path)] = str(result) or type(result).__name__
            else:
                target = output_path(path, fmt, out_dir, root)
                write_atomic(target, render(fmt, path, result))
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
        "models/carmask-clouds.json) it reads TIFF/.npy patches and writes <patch>_classes.png (class indices) or "
        "_classes.json (--format rle), and cover.csv with each patch's cloud cover.",
    )
    parser.add_argument("inputs", nargs="+", help="photo files, folders, or glob patterns")
    parser.add_argument("--out", type=Path, help="output folder (mirrors input folders); default: beside each photo")
    parser.add_argument("--format", choices=sorted(FORMATS), default="mask")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model manifest (.json) or .onnx")
    parser.add_argument("--threshold", type=float, help="probability threshold (default: the manifest's)")
    parser.add_argument(
        "--cars",
        choices=SUBJECT_MODES,
        help="main: the photo's car only; all: every car the model marks (default: the manifest's output.subject)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    parser.add_argument("--flip-tta", action="store_true", help="average with the horizontally flipped photo")
    parser.add_argument("--providers", help="comma-separated onnxruntime providers (default: CUDA if present, CPU)")
    parser.add_argument(
        "--bands", help="multi-band models: the patches' bands in file order, comma-separated (default: the model's)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    from carmask.patch_inference import PatchSegmenter
    from carmask.segmenters import open_segmenter

    providers = args.providers.split(",") if args.providers else None
    segmenter = open_segmenter(args.model.with_suffix(".json"), providers, args.threads, args.flip_tta)
    multi_band = isinstance(segmenter, PatchSegmenter)
    photos = expand_inputs(args.inputs, PATCH_SUFFIXES if multi_band else PHOTO_SUFFIXES)
    if not photos:
        parser.error(f"no {'patches' if multi_band else 'photos'} found in the given inputs")
    root = Path(args.inputs[0]) if len(args.inputs) == 1 and Path(args.inputs[0]).is_dir() else None
    if multi_band:
        from carmask.patch_predict import predict_patches

        if args.format not in PATCH_FORMATS:
            parser.error(f"--format {args.format} is for photo models; {segmenter.manifest.name} writes mask or rle")
        stats, table = predict_patches(
            segmenter, photos, args.format, args.out, root, parse_band_names(args.bands), not args.quiet
        )
        if table is not None:
            print(f"cover per patch: {table}", file=sys.stderr)
    else:
        segmenter.cars = args.cars
        stats = predict_paths(
            segmenter, photos, args.format, args.out, root, args.batch_size, args.threshold, not args.quiet
        )
    print(f"{len(stats.written)} written, {len(stats.failed)} failed", file=sys.stderr)
    for path, reason in stats.failed.items():
        print(f"  failed: {path}: {reason}", file=sys.stderr)
    return 1 if stats.failed else 0


if __name__ == "__main__":
    sys.exit(main())
