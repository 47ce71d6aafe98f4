"""The glass head's training settings, defaults in one place (CLI flags mirror them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class GlassConfig:
    trunk: Path = Path("runs/v26/model.keras")  # the car network, as shipped (carmask-weights from-onnx)
    manifest: Path = Path("models/carmask-v2.json")  # its manifest: input size, normalisation, fit
    dsmlr_dir: Path = Path("../shared/data/cars-outside/dsmlr")
    user_photos_dir: Path = Path("../shared/data/cars-outside/user-photos")
    run_dir: Path = Path("runs/glass")
    folds: int = 5
    epochs: int = 60
    batch_size: int = 16
    learning_rate: float = 2e-3
    user_photo_repeat: int = 4  # user-photos label every window (DSMLR no side window): seen this many times
    threshold: float = 0.5
    width: int = 48
    crop: int = 160  # train on random crops this many model pixels square (a multiple of 8; 0: whole inputs)
    seed: int = 42
