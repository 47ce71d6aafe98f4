"""Cloud training configuration: every knob of a run, with its default, in one place.

The defaults are the recipe of the shipped cloud model (models/carmask-clouds.json): a classic U-Net
(width 16, depth 4) on all 8 bands, 30 epochs of 128-pixel crops of the train+val patches, class-weighted
cross-entropy + Dice. The recipe was chosen on the val split (train -> val); the test split and the
cross-validation only measure it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.clouds.augment import PatchAugment
from training.clouds.bands import parse_bands
from training.clouds.data import SPLITS
from training.clouds.synthetic import SyntheticClouds
from training.model import UNetConfig

ENV_PREFIX = "CARMASK_CLOUDS_"


@dataclass
class CloudTrainConfig:
    data_dir: Path = Path("../shared/data/clouds/l8-biome")
    run_dir: Path = Path("runs/clouds")
    bands: str = "8"  # 4, 6, 8 or names: blue,green,red,nir,swir1,swir2,cirrus,tir
    train_splits: str = "train,val"
    val_splits: str = ""  # "" : no validation set, the last epoch is kept (fixed recipe)
    cross_validate: bool = False  # folds of whole biomes over train_splits + val_splits: one model per fold
    folds: int = 0  # cross-validation folds (0: one per biome, leave one biome out)
    epochs: int = 30
    crops_per_patch: int = 16  # samples per epoch = patches x this
    batch_size: int = 8
    learning_rate: float = 2e-3
    min_learning_rate: float = 1e-5  # cosine decay floor
    loss: str = "ce_dice"
    class_weights: str = "auto"  # auto[:p]: 1/frequency**p (p 0.5) in the training labels; none; or w0,w1,w2,w3
    indices: str = ""  # normalised-difference indices computed in the graph: ndsi,ndvi,ndwi ("" : none)
    base_width: int = 16
    depth: int = 4
    crop: int = 128
    gain: float = 0.10
    offset: float = 0.01
    kelvin_offset: float = 3.0
    global_gain: float = 0.0
    haze: str = "0,0"  # low,high
    zoom: float = 0.0
    synthetic_clouds: float = 0.0
    seed: int = 0

    @property
    def band_names(self) -> tuple[str, ...]:
        return parse_bands(self.bands)

    def splits(self, text: str) -> tuple[str, ...]:
        names = tuple(s.strip() for s in text.split(",") if s.strip())
        unknown = [s for s in names if s not in SPLITS]
        if unknown:
            raise ValueError(f"unknown split(s) {unknown}; choose from {SPLITS}")
        return names

    def model(self, num_classes: int) -> UNetConfig:
        return UNetConfig(
            base_width=self.base_width, depth=self.depth, in_channels=len(self.band_names), num_classes=num_classes
        )

    def weights(self, labels) -> list[float] | None:
        """The loss's class weights for these training labels (None: unweighted)."""
        import numpy as np

        from training.clouds.data import CLASSES

        text = self.class_weights.strip().lower()
        if text in ("", "none"):
            return None
        if not text.startswith("auto"):
            weights = [float(w) for w in text.split(",")]
            if len(weights) != len(CLASSES):
                raise ValueError(f"class_weights needs {len(CLASSES)} numbers, got {self.class_weights!r}")
            return weights
        counts = np.bincount(labels[labels < len(CLASSES)].ravel(), minlength=len(CLASSES)).astype(np.float64)
        power = float(text.partition(":")[2] or 0.5)
        inverse = np.maximum(counts / counts.sum(), 1e-4) ** -power
        return (inverse / inverse.mean()).round(4).tolist()

    @property
    def index_names(self) -> tuple[str, ...]:
        return tuple(i.strip().lower() for i in self.indices.split(",") if i.strip())

    def augmentation(self) -> PatchAugment:
        low, high = (float(v) for v in self.haze.split(","))
        return PatchAugment(
            crop=self.crop, gain=self.gain, offset=self.offset, kelvin_offset=self.kelvin_offset,
            global_gain=self.global_gain, haze=(low, high), zoom=self.zoom,
            clouds=SyntheticClouds(probability=self.synthetic_clouds),
        )  # fmt: skip


HELP = {
    "data_dir": "L8 Biome folder: <split>/images/*.tif and <split>/masks/*.tif",
    "run_dir": "where checkpoints, logs and reports are written (cross-validation: one sub-folder per biome)",
    "bands": "input bands: 4, 6, 8, or comma-separated names from blue,green,red,nir,swir1,swir2,cirrus,tir",
    "train_splits": "splits that train (comma-separated from train, val, test)",
    "val_splits": "splits that validate each epoch and pick the best checkpoint ('' : keep the last epoch)",
    "cross_validate": "cross-validation by biome over the train and val splits; writes cv_report.json",
    "folds": "cross-validation folds of whole biomes (0: leave one biome out)",
    "indices": "normalised-difference indices appended inside the model, from ndsi,ndvi,ndwi (none by default)",
    "crops_per_patch": "random crops drawn from each training patch per epoch",
    "crop": "training crop side in pixels (the whole patch validates)",
    "gain": "reflectance bands x U(1-gain, 1+gain) per band",
    "offset": "reflectance bands + N(0, offset) per band",
    "kelvin_offset": "thermal band + N(0, this) kelvin",
    "global_gain": "every reflectance band x one U(1-g, 1+g) per crop (sun angle, calibration)",
    "haze": "low,high: + U(low, high) haze per crop, strongest in blue, none in SWIR (negative: surface reflectance)",
    "zoom": "crops cover crop x 2**U(-zoom, zoom) pixels, resized (other ground sampling distances)",
    "synthetic_clouds": "share of crops that get a drawn cloud and shadow, labelled as drawn (0: none)",
    "class_weights": "cross-entropy class weights: auto[:p] (each class's share of the training pixels to the "
    "power -p, p 0.5 by default), none, or 4 numbers for clear,thin_cloud,thick_cloud,shadow",
}
