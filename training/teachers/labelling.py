"""The teacher-labelling job: several teachers over a folder of photos, agreement -> label, else ignored.

Layout of a labelled set (`OUT`), which `carmask-train --sources pseudo:W --pseudo-dir OUT` reads:

    OUT/set.json                  what made it: teachers and their keys, thresholds, the photos folder
    OUT/photos/<stem>.jpg         corrected copies, only with --swap-red-blue (else the photos stay where they are)
    OUT/teachers/<name>/<stem>.png    each teacher's probability x 255 at the photo's size (the cache)
    OUT/labels/<stem>.png         0 background, 1 car, 255 ignored
    OUT/labels.csv                per photo: car and ignored shares of the frame

A pixel is car where at least `votes` teachers say at least `high`, background where at least `votes` say at
most `low`, and ignored otherwise; `votes` is more than half of the teachers (default: all of them). A
majority rather than unanimity lets two strong teachers overrule a third where it errs, which is how a
student that is also one of its teachers (carmask) learns where it was wrong instead of never seeing
those pixels. Each teacher's answer is cached per photo under a key (`teachers/<name>/key.txt`):
a killed job resumes where it stopped, a new teacher adds its column without re-running the others, and a
teacher whose weights changed starts its cache again.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from training.data.sources.base import IGNORE
from training.teachers.base import Teacher

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Agreement:
    low: float = 0.2  # a teacher at most this votes background
    high: float = 0.8  # a teacher at least this votes car
    votes: int | None = None  # votes a label needs; None: every teacher's

    def __post_init__(self):
        if not 0 <= self.low < self.high <= 1:
            raise ValueError(f"need 0 <= low < high <= 1, got low={self.low}, high={self.high}")
        if self.votes is not None and self.votes < 1:
            raise ValueError(f"votes must be at least 1, got {self.votes}")

    def label(self, probs: Sequence[np.ndarray]) -> np.ndarray:
        """uint8 (H, W): 1 where enough teachers are sure of car, 0 where enough are sure of background, else 255."""
        needed = len(probs) if self.votes is None else self.votes
        if not len(probs) / 2 < needed <= len(probs):
            raise ValueError(f"{needed} votes of {len(probs)} teachers: need a majority, at most all of them")
        stack = np.stack(probs)
        label = np.full(stack.shape[1:], IGNORE, np.uint8)
        label[(stack >= self.high).sum(axis=0) >= needed] = 1
        label[(stack <= self.low).sum(axis=0) >= needed] = 0
        return label


def list_photos(folder: Path, limit: int | None = None, every: int = 1) -> list[Path]:
    """The photos of `folder`, sorted, every `every`-th, at most `limit`."""
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)[::every]
    return photos[:limit] if limit else photos


def _save_atomic(image: Image.Image, target: Path, **options) -> None:
    tmp = target.with_name(target.stem + ".tmp" + target.suffix)
    image.save(tmp, **options)
    tmp.replace(target)


def _teacher_dir(out: Path, teacher: Teacher) -> Path:
    """The teacher's cache folder; emptied when its key changed (other weights give other answers)."""
    folder = out / "teachers" / teacher.name
    key_file = folder / "key.txt"
    if folder.is_dir() and (not key_file.is_file() or key_file.read_text() != teacher.key()):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key_file.write_text(teacher.key())
    return folder


def _open(path: Path, swap_red_blue: bool) -> Image.Image:
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    if swap_red_blue:
        r, g, b = rgb.split()
        rgb = Image.merge("RGB", (b, g, r))
    return rgb


def label_photos(
    photos: Sequence[Path],
    out: Path,
    teachers: Sequence[Teacher],
    agreement: Agreement = Agreement(),
    swap_red_blue: bool = False,
    progress: Callable | None = tqdm,
) -> dict[str, int]:
    """Label `photos` into `out` (layout above); returns counts of photos labelled now and found done."""
    if not teachers:
        raise ValueError("at least one teacher is needed")
    out.mkdir(parents=True, exist_ok=True)
    folders = {t.name: _teacher_dir(out, t) for t in teachers}
    labels_dir = out / "labels"
    labels_dir.mkdir(exist_ok=True)
    photos_dir = out / "photos" if swap_red_blue else Path(photos[0]).parent.resolve() if photos else out
    set_info = {
        "photos": str(photos_dir.resolve()),
        "swap_red_blue": swap_red_blue,
        "teachers": {t.name: t.key() for t in teachers},
        "agreement": asdict(agreement),
    }
    previous = json.loads((out / "set.json").read_text()) if (out / "set.json").is_file() else None
    if previous is not None and previous != set_info:  # other teachers or thresholds: labels are made again
        shutil.rmtree(labels_dir)
        labels_dir.mkdir()
    (out / "set.json").write_text(json.dumps(set_info, indent=1))
    if swap_red_blue:
        photos_dir.mkdir(exist_ok=True)

    counts = {"labelled": 0, "done": 0}
    rows = _read_rows(out / "labels.csv") if previous == set_info else {}
    iterator = progress(photos, desc="teachers", unit="photo") if progress else photos
    for path in iterator:
        stem = Path(path).stem
        label_file = labels_dir / f"{stem}.png"
        if label_file.is_file() and stem in rows:
            counts["done"] += 1
            continue
        photo = _open(Path(path), swap_red_blue)
        if swap_red_blue and not (photos_dir / f"{stem}.jpg").is_file():
            _save_atomic(photo, photos_dir / f"{stem}.jpg", quality=95)
        probs = [_cached_probabilities(t, folders[t.name] / f"{stem}.png", photo) for t in teachers]
        label = agreement.label(probs)
        _save_atomic(Image.fromarray(label), label_file)
        rows[stem] = {
            "photo": stem,
            "car": round(float(np.mean(label == 1)), 5),
            "ignored": round(float(np.mean(label == IGNORE)), 5),
        }
        counts["labelled"] += 1
        if counts["labelled"] % 25 == 0:
            _write_rows(out / "labels.csv", rows)
    _write_rows(out / "labels.csv", rows)
    return counts


def _cached_probabilities(teacher: Teacher, cached: Path, photo: Image.Image) -> np.ndarray:
    if cached.is_file():
        with Image.open(cached) as img:
            prob = np.asarray(img.convert("L"), np.float32) / 255.0
        if prob.shape == photo.size[::-1]:
            return prob
    prob = np.clip(teacher.probabilities(photo), 0.0, 1.0)
    if prob.shape != photo.size[::-1]:
        raise ValueError(f"teacher {teacher.name} answered {prob.shape[::-1]} for a {photo.size} photo")
    _save_atomic(Image.fromarray(np.round(prob * 255).astype(np.uint8)), cached)
    return np.round(prob * 255) / 255.0


def _read_rows(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    with path.open() as f:
        return {row["photo"]: row for row in csv.DictReader(f)}


def _write_rows(path: Path, rows: dict[str, dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["photo", "car", "ignored"])
        writer.writeheader()
        writer.writerows(rows.values())
    tmp.replace(path)
