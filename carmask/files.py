"""Finding photos on disk and writing results beside or mirrored into an output folder, atomically."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# The suffixes of carmask.imaging.PHOTO_FORMATS: folders are scanned for these alone.
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".avif", ".heic", ".heif"}
FORMATS = {
    "mask": "_mask.png",
    "cutout": "_cutout.png",  # _cutout.webp / .jpg with carmask-predict --output
    "overlay": "_overlay.jpg",
    "rle": "_mask.json",
    "windows": "_windows.png",
}
# Multi-band patches (carmask.clouds.patches) and what a multi-class model writes for each.
PATCH_SUFFIXES = {".tif", ".tiff", ".npy"}
PATCH_FORMATS = {"geotiff": "_classes.tif", "mask": "_classes.png", "rle": "_classes.json"}


def expand_inputs(inputs: Iterable[str], suffixes: set[str] = PHOTO_SUFFIXES) -> list[Path]:
    """Files, folders (recursively, files with `suffixes`) and glob patterns to a sorted, de-duplicated list."""
    found: set[Path] = set()
    for item in inputs:
        matches = [Path(p) for p in glob.glob(item, recursive=True)] or [Path(item)]
        for path in matches:
            if path.is_dir():
                found.update(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
            else:
                found.add(path)  # a missing file is reported by the run, not dropped silently
    return sorted(found)


def output_path(
    photo: Path, fmt: str, out_dir: Path | None, root: Path | None = None, formats: dict[str, str] = FORMATS
) -> Path:
    name = photo.stem + formats[fmt]
    if out_dir is None:
        return photo.with_name(name)
    relative = photo.parent.relative_to(root) if root and photo.is_relative_to(root) else Path()
    return out_dir / relative / name


@dataclass
class PredictStats:
    """What a carmask-predict run wrote, what failed and why, and the seconds spent per stage."""

    written: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(
        default_factory=lambda: {"decode": 0.0, "model": 0.0, "upsample": 0.0, "encode": 0.0}
    )


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)  # readers see the whole file or none: an interrupted run never leaves half a mask
