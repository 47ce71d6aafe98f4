"""Training batches drawn from several weighted sources, as a backend-neutral `keras.utils.PyDataset`."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import keras
import numpy as np

from carmask.preprocess import Normalisation
from training.data.augment import AugmentConfig, augment
from training.data.composite import CompositeConfig, paste


@dataclass
class SourceArrays:
    """One source's cached photos and labels, and its share of each epoch.

    kind "photo": the photos themselves. kind "composite": each item is a car (photo + mask) pasted onto a
    random one of `backgrounds`.
    """

    name: str
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N, H, W) uint8: 0, 1, 255 ignored
    weight: float = 1.0
    kind: str = "photo"
    backgrounds: np.ndarray | None = None

    def __post_init__(self):
        if self.kind not in ("photo", "composite"):
            raise ValueError(f"unknown source kind {self.kind!r}")
        if self.kind == "composite" and (self.backgrounds is None or not len(self.backgrounds)):
            raise ValueError(f"composite source {self.name!r} needs backgrounds")


class MixedBatches(keras.utils.PyDataset):
    """Shuffled, augmented, normalised batches mixing the sources by weight.

    An epoch holds `samples_per_epoch` items (default: every photo of every source once), each source
    contributing its weight's share, drawn without replacement while it has photos enough. Order and
    augmentation are functions of (seed, epoch, batch index) alone, so the same seed gives the same
    batches, and a resumed run picks up the same stream it would have seen.
    """

    def __init__(
        self,
        sources: list[SourceArrays],
        batch_size: int,
        normalisation: Normalisation,
        augmentation: AugmentConfig | None = None,
        out_size: tuple[int, int] | None = None,
        source_augmentation: dict[str, AugmentConfig] | None = None,
        samples_per_epoch: int | None = None,
        composite: CompositeConfig | None = None,
        shuffle: bool = True,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        sources = [s for s in sources if s.weight > 0]
        if not sources:
            raise ValueError("no training source has a positive weight")
        self.sources, self.batch_size, self.normalisation = sources, batch_size, normalisation
        self.augmentation = augmentation or AugmentConfig()
        self.source_augmentation = source_augmentation or {}  # by source name; the rest get `augmentation`
        self.composite = composite or CompositeConfig()
        self.out_shape = (out_size[1], out_size[0]) if out_size else sources[0].labels.shape[1:3]
        self.samples_per_epoch = samples_per_epoch or sum(len(s.images) for s in sources)
        self.shuffle, self.seed = shuffle, seed
        self.set_epoch(0)

    def _counts(self) -> list[int]:
        total = sum(s.weight for s in self.sources)
        counts = [round(self.samples_per_epoch * s.weight / total) for s in self.sources]
        counts[0] += self.samples_per_epoch - sum(counts)  # rounding goes to the first source
        return counts

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        rng = np.random.default_rng([self.seed, epoch])
        plan = []
        for index, (source, count) in enumerate(zip(self.sources, self._counts(), strict=True)):
            n = len(source.images)
            exact = not self.shuffle and count == n
            items = np.arange(n) if exact else rng.choice(n, size=count, replace=count > n)
            plan.append(np.stack([np.full(count, index), items], axis=1))
        plan = np.concatenate(plan)
        self.plan = plan[rng.permutation(len(plan))] if self.shuffle else plan

    def __len__(self) -> int:
        return int(np.ceil(len(self.plan) / self.batch_size))

    def item(self, rng: np.random.Generator, source_index: int, item: int) -> tuple[np.ndarray, np.ndarray]:
        source = self.sources[source_index]
        image, label = source.images[item], source.labels[item]
        if source.kind == "composite":
            background = source.backgrounds[rng.integers(len(source.backgrounds))]
            image, label = paste(rng, self.composite, image, label, background)
        cfg = self.source_augmentation.get(source.name, self.augmentation)
        return augment(rng, cfg, image, label, self.out_shape)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        picks = self.plan[index * self.batch_size : (index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        pairs = [self.item(rng, int(k), int(i)) for k, i in picks]
        x = self.normalisation.apply(np.stack([p[0] for p in pairs]))
        y = np.stack([p[1] for p in pairs]).astype(np.float32)[..., None]  # 255 marks ignored pixels
        return x, y


def prefetched(batches: keras.utils.PyDataset) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The epoch's batches in order, each made on a second thread while the model trains on the one before
    (augmentation and pasting run in NumPy and OpenCV, which let go of the GIL): the same batches as
    `batches[i]`, since a batch is a function of (seed, epoch, index) alone."""
    count = len(batches)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="batches") as pool:
        ahead = pool.submit(batches.__getitem__, 0) if count else None
        for index in range(count):
            batch = ahead.result()
            if index + 1 < count:
                ahead = pool.submit(batches.__getitem__, index + 1)
            yield batch
