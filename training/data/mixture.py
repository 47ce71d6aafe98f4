"""The training mixture and the validation sets of a run, built from the configured sources.

Every source is split by its own unit, never by photo: Carvana by car (split.json), DSMLR by its
published train/test folders, DAVIS by sequence, backgrounds by BSDS split. Validation sets are scored
separately, so a gain on one kind of photo cannot hide a loss on another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.config import TrainConfig
from training.data.cache import load_arrays
from training.data.dataset import SourceArrays
from training.data.reader import Sample
from training.data.sources.backgrounds import read_backgrounds
from training.data.sources.davis import read_davis
from training.data.sources.dsmlr import read_dsmlr, with_teacher
from training.data.sources.pseudo import read_pseudo
from training.data.sources.user_photos import read_user_photos


@dataclass
class ValidationSet:
    name: str
    samples: list  # Sample / LabelledPhoto: image_path, group, load_label()
    images: np.ndarray  # (N, S, S, 3) uint8 at the model's input size
    labels: np.ndarray  # (N, S, S) uint8: 0, 1, 255 ignored


def _davis_sequences(cfg: TrainConfig) -> tuple[list[str], list[str]]:
    held_out = [s.strip() for s in cfg.davis_val_sequences.split(",") if s.strip()]
    everything = sorted({f.group.split("/", 1)[1] for f in read_davis(cfg.davis_dir)})
    return [s for s in everything if s not in held_out], held_out


def _limit(samples: list, cfg: TrainConfig) -> list:
    return samples[: cfg.max_images]


def training_sources(cfg: TrainConfig, carvana_train: list[Sample]) -> list[SourceArrays]:
    """The weighted sources of the training mixture, cached at `cache_size`."""
    weights = cfg.source_weights()
    size = (cfg.cache_size, cfg.cache_size)

    def arrays(samples: list) -> tuple[np.ndarray, np.ndarray]:
        return load_arrays(_limit(samples, cfg), size, cfg.cache_dir, cfg.workers)

    cars, car_masks = arrays(carvana_train)
    sources = [SourceArrays("carvana", cars, car_masks, weights["carvana"])]
    backgrounds = None
    if weights.get("composite") or weights.get("negatives"):
        backgrounds, empty = arrays(read_backgrounds(cfg.backgrounds_dir, ("train", "val")))
    if weights.get("composite"):
        sources.append(SourceArrays("composite", cars, car_masks, weights["composite"], "composite", backgrounds))
    if weights.get("negatives"):
        sources.append(SourceArrays("negatives", backgrounds, empty, weights["negatives"]))
    if weights.get("dsmlr"):
        photos = with_teacher(read_dsmlr(cfg.dsmlr_dir, "trainingset"), cfg.teacher())
        sources.append(SourceArrays("dsmlr", *arrays(photos), weights["dsmlr"]))
    if weights.get("pseudo"):
        photos = read_pseudo(cfg.pseudo_dir, cfg.pseudo_max_ignored)
        sources.append(SourceArrays("pseudo", *arrays(photos), weights["pseudo"]))
    if weights.get("davis"):
        train_sequences, _ = _davis_sequences(cfg)
        sources.append(SourceArrays("davis", *arrays(read_davis(cfg.davis_dir, train_sequences)), weights["davis"]))
    return sources


EVALUATION_SETS = ("carvana", "dsmlr", "davis", "no_car", "user_photos")


def held_out_photos(cfg: TrainConfig, carvana_val: list[Sample], name: str) -> list:
    """The held-out photos of one evaluation set: carvana (validation cars), dsmlr (test folder), davis
    (held-out sequences), no_car (BSDS test photos), user_photos (the yardstick: validation only)."""
    if name == "carvana":
        return carvana_val
    if name == "dsmlr":
        return read_dsmlr(cfg.dsmlr_dir, "testset")
    if name == "davis":
        return read_davis(cfg.davis_dir, _davis_sequences(cfg)[1])
    if name == "no_car":
        return read_backgrounds(cfg.backgrounds_dir, ("test",))
    if name == "user_photos":
        return read_user_photos(cfg.user_photos_dir)
    raise ValueError(f"unknown evaluation set {name!r}; choose from {EVALUATION_SETS}")


def available_sets(cfg: TrainConfig) -> list[str]:
    """The evaluation sets whose data folder exists here."""
    folders = {
        "carvana": cfg.data_dir,
        "dsmlr": cfg.dsmlr_dir,
        "davis": cfg.davis_dir,
        "no_car": cfg.backgrounds_dir,
        "user_photos": cfg.user_photos_dir,
    }
    return [name for name in EVALUATION_SETS if Path(folders[name]).is_dir()]


def validation_sets(cfg: TrainConfig, carvana_val: list[Sample]) -> list[ValidationSet]:
    """Carvana's held-out cars, plus DSMLR's test photos and the held-out DAVIS sequences when they train."""
    weights = cfg.source_weights()
    names = ["carvana"] + [n for n in ("dsmlr", "davis") if weights.get(n)]
    sets = []
    for name, samples in ((n, held_out_photos(cfg, carvana_val, n)) for n in names):
        samples = _limit(samples, cfg)
        images, labels = load_arrays(samples, cfg.size, cfg.cache_dir, cfg.workers)
        sets.append(ValidationSet(name, samples, images, labels))
    return sets


def describe(sources: list[SourceArrays], sets: list[ValidationSet]) -> str:
    train = ", ".join(f"{s.name} {len(s.images)} (weight {s.weight:g})" for s in sources)
    val = ", ".join(f"{s.name} {len(s.images)}" for s in sets)
    return f"training sources: {train}\nvalidation sets: {val}"
