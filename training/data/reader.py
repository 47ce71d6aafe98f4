"""Reader for Kaggle's Carvana layout.

    <root>/train/<car>_NN.jpg
    <root>/train_masks/<car>_NN_mask.gif     (preferred)
    <root>/train_masks.csv                   (img,rle_mask; used where a GIF is absent)

Everything is checked up front (missing masks, unreadable files, mask sizes
that differ from their image) and reported as one error naming the files, so
a run never dies an hour in on a bad file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from carmask import rle

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class DatasetError(ValueError):
    """The data folder is not usable; the message names every offending file."""


@dataclass(frozen=True)
class Sample:
    name: str  # image file name, e.g. "0cdf5b5d0ce1_01.jpg"
    image_path: Path
    mask_path: Path | None  # GIF mask, or None when the mask comes from RLE
    rle: str | None = None

    @property
    def car(self) -> str:
        """The car id: the file stem without its `_NN` view number."""
        return Path(self.name).stem.rsplit("_", 1)[0]

    @property
    def group(self) -> str:
        return self.car

    def load_label(self) -> np.ndarray:
        return load_mask(self)


def _read_rle_csv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"img", "rle_mask"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: expected a header 'img,rle_mask', got {reader.fieldnames}")
        return {row["img"]: row["rle_mask"] for row in reader}


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


def _summarise(problems: list[str], limit: int = 20) -> str:
    more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "\n  ".join(problems[:limit]) + more


def read_carvana(root: str | Path, split: str = "train") -> list[Sample]:
    """List the labelled samples of a Carvana folder, checking every file first."""
    root = Path(root)
    image_dir = root / split
    if not image_dir.is_dir():
        raise DatasetError(f"no '{split}/' folder of photos under {root}")
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DatasetError(f"{image_dir} holds no photos ({', '.join(IMAGE_SUFFIXES)})")
    rles = _read_rle_csv(root / f"{split}_masks.csv")
    mask_dir = root / f"{split}_masks"

    samples, problems = [], []
    for image_path in images:
        gif = mask_dir / f"{image_path.stem}_mask.gif"
        sample = Sample(
            name=image_path.name,
            image_path=image_path,
            mask_path=gif if gif.is_file() else None,
            rle=rles.get(image_path.name),
        )
        problem = _check_sample(sample)
        if problem:
            problems.append(problem)
        samples.append(sample)
    if problems:
        raise DatasetError(f"{len(problems)} problem(s) in {root}:\n  {_summarise(problems)}")
    return samples


def _check_sample(sample: Sample) -> str | None:
    """Header-level checks (cheap): both files readable and of the same size."""
    try:
        image_size = _image_size(sample.image_path)
    except Exception as exc:  # noqa: BLE001 - any failure to open is reported by name
        return f"{sample.name}: unreadable image ({exc})"
    if sample.mask_path is not None:
        try:
            mask_size = _image_size(sample.mask_path)
        except Exception as exc:  # noqa: BLE001
            return f"{sample.mask_path.name}: unreadable mask ({exc})"
        if mask_size != image_size:
            mask_text, image_text = "x".join(map(str, mask_size)), "x".join(map(str, image_size))
            return f"{sample.name}: mask {sample.mask_path.name} is {mask_text}, image is {image_text}"
    elif sample.rle is not None:
        w, h = image_size
        try:
            rle.decode(sample.rle, h, w)
        except rle.RLEError as exc:
            return f"{sample.name}: RLE mask does not fit a {w}x{h} image ({exc})"
    else:
        return f"{sample.name}: no mask (neither {sample.name[:-4]}_mask.gif nor a train_masks.csv row)"
    return None


def load_mask(sample: Sample) -> np.ndarray:
    """The full-resolution 0/1 uint8 mask of a sample, from its GIF or its RLE."""
    if sample.mask_path is not None:
        with Image.open(sample.mask_path) as img:
            return (np.asarray(img.convert("L")) > 0).astype(np.uint8)
    w, h = _image_size(sample.image_path)
    return rle.decode(sample.rle or "", h, w)
