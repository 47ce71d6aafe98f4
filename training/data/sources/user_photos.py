"""The user-photos yardstick: photos of the kind users send, with whole-car masks. Evaluation only.

`images/<name>.jpg` and `masks/<name>.png` (0/255, the whole car, photo size). Its group is the kind of
photo, told by the name: `rf_*` street photos, `ic_IMG_2020*` phone photos, other `ic_*` web and press
views. It is never a training source (`TrainConfig.sources` has no name for it): every figure on it is a
validation figure, reported per group with bootstrap intervals because it is small.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.sources.base import LabelledPhoto, SourceError

GROUPS = ("web", "phone", "street")


def photo_group(name: str) -> str:
    if name.startswith("rf_"):
        return "street"
    if name.startswith("ic_IMG_2020"):
        return "phone"
    return "web"


@dataclass(frozen=True)
class UserPhoto(LabelledPhoto):
    mask_path: Path = Path()

    def load_label(self) -> np.ndarray:
        with Image.open(self.mask_path) as img:
            return (np.asarray(img.convert("L")) >= 128).astype(np.uint8)


def read_user_photos(root: str | Path) -> list[UserPhoto]:
    root = Path(root)
    images, masks = root / "images", root / "masks"
    if not images.is_dir() or not masks.is_dir():
        raise SourceError(f"{root} needs images/ and masks/")
    photos = []
    for path in sorted(images.iterdir()):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        mask = masks / f"{path.stem}.png"
        if not mask.is_file():
            raise SourceError(f"{path.name} has no mask {mask}")
        photos.append(UserPhoto(path.name, path, photo_group(path.stem), mask))
    if not photos:
        raise SourceError(f"{images} holds no photos")
    return photos
