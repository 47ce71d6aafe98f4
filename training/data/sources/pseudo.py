"""A teacher-labelled set (`carmask-teacher`'s folder) as a training source: photos without human masks,
labelled where the teachers agree (0 background, 1 car) and ignored (255) where they do not.

Photos the teachers mostly disagree on (more than `max_ignored` of the frame ignored) are left out: their
labels would teach little and their photos are the hard, ambiguous ones (two cars, a car cut by the frame).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.sources.base import LabelledPhoto, SourceError


@dataclass(frozen=True)
class PseudoPhoto(LabelledPhoto):
    label_path: Path = Path()
    label_key: str = ""  # the teachers and thresholds: the array cache keys on it

    def load_label(self) -> np.ndarray:
        with Image.open(self.label_path) as img:
            label = np.asarray(img.convert("L"))
        with Image.open(self.image_path) as photo:
            if photo.size != label.shape[::-1]:
                raise SourceError(f"{self.label_path} is {label.shape[::-1]}, the photo {photo.size}")
        return label.copy()


def read_pseudo(root: str | Path, max_ignored: float = 0.15) -> list[PseudoPhoto]:
    """The labelled photos of a `carmask-teacher` folder whose ignored share is at most `max_ignored`."""
    root = Path(root)
    info_file, table = root / "set.json", root / "labels.csv"
    if not info_file.is_file() or not table.is_file():
        raise SourceError(f"{root} is not a carmask-teacher folder (no set.json / labels.csv): run carmask-teacher")
    info = json.loads(info_file.read_text())
    photos_dir = Path(info["photos"])
    key = json.dumps({"teachers": info["teachers"], "agreement": info["agreement"]}, sort_keys=True)
    with table.open() as f:
        rows = sorted(csv.DictReader(f), key=lambda row: row["photo"])
    photos = []
    for row in rows:
        if float(row["ignored"]) > max_ignored or float(row["car"]) == 0:
            continue
        stem = row["photo"]
        image = next((p for p in (photos_dir / f"{stem}{s}" for s in (".jpg", ".jpeg", ".png")) if p.is_file()), None)
        label = root / "labels" / f"{stem}.png"
        if image is None or not label.is_file():
            raise SourceError(f"{stem}: photo or label missing under {root} (was the folder moved?)")
        photos.append(PseudoPhoto(image.name, image, f"pseudo/{stem}", label, key))
    if not photos:
        raise SourceError(f"{root}: no labelled photo with at most {max_ignored:.0%} ignored")
    return photos
