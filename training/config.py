"""Training configuration: every knob of a run, with its default, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.data.augment import AugmentConfig, preset
from training.model.unet import UNetConfig

ENV_PREFIX = "CARMASK_TRAIN_"


@dataclass
class TrainConfig:
    data_dir: Path = Path("../shared/data/carvana")
    run_dir: Path = Path("runs/unet")
    cache_dir: Path | None = Path(".cache/carmask")
    epochs: int = 40
    batch_size: int = 16
    learning_rate: float = 2e-3
    min_learning_rate: float = 2e-5  # cosine decay floor
    loss: str = "bce_dice"
    image_size: int = 256
    base_width: int = 8
    depth: int = 4
    batchnorm: bool = True
    augment: str = "mild"  # preset: none, mild, original
    rotation: float | None = None  # preset overrides
    width_shift: float | None = None
    height_shift: float | None = None
    shear: float | None = None
    zoom: float | None = None
    horizontal_flip: bool | None = None
    val_fraction: float = 0.2
    seed: int = 42
    patience: int = 10  # early stopping: epochs without a better validation Dice
    threshold: float = 0.5
    max_images: int | None = None  # use only the first N photos (smoke runs)
    resume: bool = False
    workers: int = 2  # processes decoding the cache

    @property
    def size(self) -> tuple[int, int]:
        return (self.image_size, self.image_size)

    def unet(self) -> UNetConfig:
        return UNetConfig(base_width=self.base_width, depth=self.depth, batchnorm=self.batchnorm)

    def augmentation(self) -> AugmentConfig:
        return preset(
            self.augment,
            rotation=self.rotation,
            width_shift=self.width_shift,
            height_shift=self.height_shift,
            shear=self.shear,
            zoom=self.zoom,
            horizontal_flip=self.horizontal_flip,
        )


HELP = {
    "data_dir": "Carvana folder (train/, train_masks/ or train_masks.csv)",
    "run_dir": "where checkpoints, logs, plots and the split are written",
    "cache_dir": "cache of resized arrays (none to disable)",
    "augment": "augmentation preset: none, mild, original (ImageDataGenerator settings)",
    "base_width": "U-Net channels at full resolution (doubles per level)",
    "resume": "continue from run_dir/last.keras with its optimizer state",
}
