"""Batches for training and validation as a backend-neutral `keras.utils.PyDataset`."""

from __future__ import annotations

import keras
import numpy as np

from carmask.preprocess import Normalisation
from training.data.augment import AugmentConfig, augment


class SegmentationBatches(keras.utils.PyDataset):
    """Shuffled, augmented, normalised batches from cached uint8 arrays.

    Order and augmentation are functions of (seed, epoch, batch index) alone, so
    the same seed gives the same batches, and a resumed run picks up the same
    stream it would have seen.
    """

    def __init__(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        batch_size: int,
        normalisation: Normalisation,
        augmentation: AugmentConfig | None = None,
        shuffle: bool = True,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.images, self.masks = images, masks
        self.batch_size = batch_size
        self.normalisation = normalisation
        self.augmentation = augmentation or AugmentConfig()
        self.shuffle, self.seed = shuffle, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        n = len(self.images)
        self.order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def __len__(self) -> int:
        return int(np.ceil(len(self.images) / self.batch_size))

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        picks = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        pairs = [augment(rng, self.augmentation, self.images[i], self.masks[i]) for i in picks]
        x = self.normalisation.apply(np.stack([p[0] for p in pairs]))
        y = np.stack([p[1] for p in pairs]).astype(np.float32)[..., None]
        return x, y
