"""Glass labels: 1 glass, 0 not glass, 255 unknown, at each photo's own size.

DSMLR marks the windscreen and the rear window (`front_glass`, `back_glass`); its side windows lie inside
the door polygons, and roof, pillars and quarter windows inside no polygon at all, so doors and the car's
unlabelled hull are unknown, never "not glass". user-photos' part labels mark every window (class 4), so
they say glass or not everywhere; they are the car mask's yardstick, which is why the head trains on a
frozen network and is measured by k-fold over them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.sources.base import IGNORE, SourceError
from training.data.sources.dsmlr import fill_polygons, whole_car_label
from training.data.sources.user_photos import photo_group

GLASS_PARTS = ("front_glass", "back_glass")
UNKNOWN_PARTS = ("front_left_door", "front_right_door", "back_left_door", "back_right_door")
WINDOW_CLASS = 4  # user-photos parts/: 0 background, 1 body, 2 wheel, 3 light, 4 window


@dataclass(frozen=True)
class GlassPhoto:
    name: str
    image_path: Path
    group: str  # "dsmlr", or the user-photos group (web / phone / street): folds split user-photos only
    label_source: Path | tuple  # a parts PNG, or DSMLR's (width, height, {part: polygons})

    def load_label(self) -> np.ndarray:
        if isinstance(self.label_source, Path):
            with Image.open(self.label_source) as img:
                return (np.asarray(img) == WINDOW_CLASS).astype(np.uint8)
        width, height, parts = self.label_source
        return dsmlr_glass_label(parts, width, height)


def dsmlr_glass_label(parts: dict[str, list], width: int, height: int) -> np.ndarray:
    """Glass where a glass polygon is; unknown on doors and in the car's hull no part covers; else 0."""
    every = [p for polys in parts.values() for p in polys]
    label = np.where(whole_car_label(every, width, height) == IGNORE, IGNORE, 0).astype(np.uint8)
    label[fill_polygons([p for n in UNKNOWN_PARTS for p in parts.get(n, [])], width, height)] = IGNORE
    label[fill_polygons([p for n in GLASS_PARTS for p in parts.get(n, [])], width, height)] = 1
    return label


def read_dsmlr_glass(root: str | Path, splits=("trainingset", "testset")) -> list[GlassPhoto]:
    """DSMLR photos that show some glass (a photo without a glass polygon may be one the annotators skipped)."""
    photos = []
    for split in splits:
        folder = Path(root) / split
        ann_file = folder / "annotations.json"
        if not ann_file.is_file():
            raise SourceError(f"no DSMLR annotations at {ann_file}")
        coco = json.loads(ann_file.read_text())
        names = {c["id"]: c["name"] for c in coco["categories"]}
        parts: dict[int, dict[str, list]] = {}
        for ann in coco["annotations"]:
            polys = ann["segmentation"] if isinstance(ann["segmentation"], list) else []
            parts.setdefault(ann["image_id"], {}).setdefault(names[ann["category_id"]], []).extend(map(tuple, polys))
        for image in sorted(coco["images"], key=lambda i: i["file_name"]):
            own = parts.get(image["id"], {})
            if not any(own.get(n) for n in GLASS_PARTS):
                continue
            own.pop("_background_", None)
            path = folder / "JPEGImages" / image["file_name"]
            photos.append(GlassPhoto(f"{split}/{image['file_name']}", path, "dsmlr",
                                     (int(image["width"]), int(image["height"]), own)))  # fmt: skip
    return photos


def read_user_photo_glass(root: str | Path) -> list[GlassPhoto]:
    """user-photos with part labels (65 of the 69), grouped web / phone / street."""
    root = Path(root)
    if not (root / "parts").is_dir():
        raise SourceError(f"{root} has no parts/ folder")
    photos = []
    for parts in sorted((root / "parts").glob("*.png")):
        image = next((p for p in (root / "images").glob(parts.stem + ".*")), None)
        if image is None:
            raise SourceError(f"{parts.name} has no photo in {root / 'images'}")
        photos.append(GlassPhoto(image.name, image, photo_group(parts.stem), parts))
    if not photos:
        raise SourceError(f"{root / 'parts'} holds no part labels")
    return photos
