"""DAVIS-2016 sequences: `JPEGImages/480p/<sequence>/NNNNN.jpg` with `Annotations/480p/<sequence>/NNNNN.png`.

A sequence is one car filmed over seconds: frames are near duplicates, so the split unit is the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.sources.base import LabelledPhoto, SourceError


@dataclass(frozen=True)
class DavisFrame(LabelledPhoto):
    mask_path: Path = Path()

    def load_label(self) -> np.ndarray:
        with Image.open(self.mask_path) as img:
            return (np.asarray(img.convert("L")) > 127).astype(np.uint8)


def read_davis(root: str | Path, sequences: list[str] | None = None, resolution: str = "480p") -> list[DavisFrame]:
    """Frames of the named sequences (all when None), each with its mask."""
    root = Path(root)
    image_root, mask_root = root / "JPEGImages" / resolution, root / "Annotations" / resolution
    if not image_root.is_dir() or not mask_root.is_dir():
        raise SourceError(f"no DAVIS layout under {root} (JPEGImages/{resolution}/, Annotations/{resolution}/)")
    available = sorted(p.name for p in image_root.iterdir() if p.is_dir())
    unknown = sorted(set(sequences or []) - set(available))
    if unknown:
        raise SourceError(f"DAVIS sequences {unknown} not in {image_root} (has {available})")
    frames, missing = [], []
    for sequence in sequences or available:
        for image_path in sorted((image_root / sequence).glob("*.jpg")):
            mask_path = mask_root / sequence / f"{image_path.stem}.png"
            if not mask_path.is_file():
                missing.append(f"{sequence}/{mask_path.name}")
                continue
            frames.append(DavisFrame(f"{sequence}/{image_path.name}", image_path, f"davis/{sequence}", mask_path))
    if missing:
        raise SourceError(f"{len(missing)} DAVIS frame(s) without a mask: {', '.join(missing[:10])}")
    return frames
