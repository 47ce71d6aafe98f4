"""Train/validation split by car: a car's 16 near-duplicate views never straddle the split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.data.reader import Sample


def split_by_car(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Shuffle the cars with `seed` and hold out `val_fraction` of them (at least one)."""
    cars = sorted({s.car for s in samples})
    if len(cars) < 2:
        raise ValueError(f"need at least 2 cars to split, found {len(cars)}")
    order = np.random.default_rng(seed).permutation(len(cars))
    n_val = min(len(cars) - 1, max(1, round(len(cars) * val_fraction)))
    val_cars = {cars[i] for i in order[:n_val]}
    train = [s for s in samples if s.car not in val_cars]
    val = [s for s in samples if s.car in val_cars]
    return train, val


def write_split(path: Path, train: list[Sample], val: list[Sample], seed: int) -> None:
    path.write_text(
        json.dumps(
            {
                "seed": seed,
                "train_cars": sorted({s.car for s in train}),
                "val_cars": sorted({s.car for s in val}),
                "train_images": [s.name for s in train],
                "val_images": [s.name for s in val],
            },
            indent=1,
        )
    )


def read_split(path: Path, samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """Re-apply a saved split (by car) to a list of samples."""
    data = json.loads(path.read_text())
    val_cars = set(data["val_cars"])
    return [s for s in samples if s.car not in val_cars], [s for s in samples if s.car in val_cars]
