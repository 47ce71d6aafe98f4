"""DSMLR Car Parts Segmentation v2 (COCO polygons of 18 parts) as whole-car labels with ignore regions.

The set has no body-panel class: the union of parts leaves holes in doors, fenders and roof, and some
photos lack whole parts (a rear door, a bumper). So a whole-car label is: parts = car; outside the slightly
dilated convex hull of all the photo's parts = background; the rest of the hull = ignored. One hull per
photo, not one per cluster of parts: a missing door splits a car's parts into clusters, and per-cluster
hulls would label that door background (seen on the test photos). Where two cars are annotated, the street
between them is ignored rather than labelled: a lost pixel, never a wrong one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from training.data.sources.base import IGNORE, LabelledPhoto, SourceError
from training.data.teacher import Teacher

BACKGROUND_CATEGORY = "_background_"
HULL_MARGIN = 0.01  # of the image diagonal: the hull is dilated by this before "outside" counts as background


@dataclass(frozen=True)
class DsmlrPhoto(LabelledPhoto):
    polygons: tuple[tuple[float, ...], ...] = ()
    width: int = 0
    height: int = 0
    teacher: Teacher | None = None  # fills the ignored hull where a general model is confident

    @property
    def label_key(self) -> str:
        """What the label depends on beyond the photo's path (the array cache keys on it)."""
        return self.teacher.key() if self.teacher else ""

    def load_label(self) -> np.ndarray:
        label = whole_car_label(self.polygons, self.width, self.height)
        return self.teacher.fill(label, Path(self.name).stem) if self.teacher else label


def _disk(radius: int) -> np.ndarray:
    r = max(1, radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return xx**2 + yy**2 <= r * r


def _convex_hull_mask(mask: np.ndarray) -> np.ndarray:
    """Filled convex hull of a boolean mask (monotone chain on its pixel corners)."""
    ys, xs = np.nonzero(mask)
    points = sorted(set(zip(xs.tolist(), ys.tolist(), strict=True)))
    if len(points) < 3:
        return mask.copy()

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in points:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(points):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    canvas = Image.new("L", mask.shape[::-1], 0)
    ImageDraw.Draw(canvas).polygon(hull, fill=1, outline=1)
    return np.asarray(canvas, dtype=bool) | mask


def fill_polygons(polygons, width: int, height: int) -> np.ndarray:
    """(height, width) bool: inside any of `polygons` (flat [x0, y0, x1, y1, ...] lists in pixels)."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polygons:
        if len(poly) >= 6:
            draw.polygon(list(poly), fill=1, outline=1)
    return np.asarray(canvas, dtype=bool)


def whole_car_label(polygons, width: int, height: int) -> np.ndarray:
    """0/1/255 label from part polygons (flat [x0, y0, x1, y1, ...] lists in pixels)."""
    parts = fill_polygons(polygons, width, height)
    diagonal = float(np.hypot(width, height))
    hull = ndimage.binary_dilation(_convex_hull_mask(parts), _disk(round(HULL_MARGIN * diagonal)))
    label = np.where(hull, IGNORE, 0).astype(np.uint8)
    label[parts] = 1
    return label


def with_teacher(photos: list[DsmlrPhoto], teacher: Teacher | None) -> list[DsmlrPhoto]:
    """The same photos, their ignored hulls filled by `teacher` (None: as they are)."""
    return [replace(p, teacher=teacher) for p in photos] if teacher else photos


def read_dsmlr(root: str | Path, split: str = "trainingset") -> list[DsmlrPhoto]:
    """The photos of `<root>/<split>/` (JPEGImages/ + annotations.json), one group per photo."""
    folder = Path(root) / split
    ann_file = folder / "annotations.json"
    if not ann_file.is_file():
        raise SourceError(f"no DSMLR annotations at {ann_file}")
    try:
        coco = json.loads(ann_file.read_text())
        background = {c["id"] for c in coco["categories"] if c["name"] == BACKGROUND_CATEGORY}
        polygons: dict[int, list[tuple[float, ...]]] = {}
        for ann in coco["annotations"]:
            if ann["category_id"] in background:
                continue
            segmentation = ann["segmentation"]
            if not isinstance(segmentation, list):
                raise SourceError(f"{ann_file}: annotation {ann['id']} is not a polygon list (RLE is not supported)")
            polygons.setdefault(ann["image_id"], []).extend(tuple(p) for p in segmentation)
        images = coco["images"]
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{ann_file}: not COCO annotations ({exc})") from None
    photos, missing = [], []
    for image in sorted(images, key=lambda i: i["file_name"]):
        path = folder / "JPEGImages" / image["file_name"]
        if not path.is_file():
            missing.append(image["file_name"])
            continue
        if image["id"] not in polygons:  # no car annotated: its label would be wrong, not empty
            continue
        photos.append(
            DsmlrPhoto(
                name=image["file_name"],
                image_path=path,
                group=f"dsmlr/{split}/{Path(image['file_name']).stem}",
                polygons=tuple(polygons[image["id"]]),
                width=int(image["width"]),
                height=int(image["height"]),
            )
        )
    if missing:
        raise SourceError(f"{len(missing)} photo(s) named in {ann_file} are missing: {', '.join(missing[:10])}")
    if not photos:
        raise SourceError(f"{ann_file} annotates no photo")
    return photos
