"""Car-free photos (BSDS500, `<split>_<id>.jpg`): backgrounds for copy-paste and negatives.

The BSDS split in the name is the split unit: train/val photos for training, test photos for checking that
a photo without a car gets an (almost) empty mask.
"""

from __future__ import annotations

from pathlib import Path

from training.data.sources.base import SourceError, UnlabelledBackground

SUFFIXES = (".jpg", ".jpeg", ".png")


def read_backgrounds(root: str | Path, splits: tuple[str, ...] = ("train", "val")) -> list[UnlabelledBackground]:
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"no background folder {root}")
    photos = [
        UnlabelledBackground(p.name, p, f"backgrounds/{p.stem}")
        for p in sorted(root.iterdir())
        if p.suffix.lower() in SUFFIXES and p.stem.split("_", 1)[0] in splits
    ]
    if not photos:
        raise SourceError(f"{root} holds no photos named <split>_<id> for splits {list(splits)}")
    return photos
