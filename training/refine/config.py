"""The edge refiner's training settings, defaults in one place (carmask-train-refiner's flags mirror them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class RefineConfig:
    manifest: Path = Path("models/carmask-v2.json")  # the car model whose answers the refiner redraws
    carvana_dir: Path = Path("../shared/data/carvana")
    dsmlr_dir: Path = Path("../shared/data/cars-outside/dsmlr")
    davis_dir: Path = Path("../shared/data/cars-outside/davis")
    davis_val_sequences: str = "car-roundabout"  # held out, as the car model's training held it out
    sources: str = "carvana,davis,dsmlr"  # which of the three train the refiner (comma-separated)
    cache_dir: Path = Path(".cache/carmask/refine")  # coarse answers and tiles (rebuilt when missing)
    run_dir: Path = Path("runs/refine")
    design: str = "unet"  # training.refine.nets.DESIGNS
    width: int = 8
    radius: int = 8  # the band the refiner may change, px (also each tile's labelled region)
    crop: int = 64  # training tiles, px square (a multiple of 4)
    per_photo: int = 48  # tiles cut from each photo
    epochs: int = 10
    tiles_per_epoch: int = 16384
    batch_size: int = 32
    learning_rate: float = 5e-3
    seed: int = 42
