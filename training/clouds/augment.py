"""Augmentation for multi-band patches: the dihedral group, crops, and band-wise gain/offset jitter.

A satellite patch has no "up": all 8 flips/90-degree rotations are equally real. Crops give the few
scenes many framings. Gain and offset per band stand in for other sensors' calibration, sun angle and
haze (reflectance bands), and for other seasons' temperatures (the thermal band, in kelvin, gets an
offset only). Works on physical values, before normalisation, image and labels together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.clouds.bands import BANDS


@dataclass
class PatchAugment:
    crop: int = 128  # training crop side (0: the whole patch)
    dihedral: bool = True
    gain: float = 0.10  # reflectance x U(1 - gain, 1 + gain), per band
    offset: float = 0.01  # reflectance + N(0, offset), per band
    kelvin_offset: float = 3.0  # thermal + N(0, kelvin_offset)


def augment_patch(
    image: np.ndarray, labels: np.ndarray, bands: tuple[str, ...], cfg: PatchAugment, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One augmented (crop, crop, bands) image and its (crop, crop) labels."""
    h, w = labels.shape
    if cfg.crop and cfg.crop < min(h, w):
        top, left = rng.integers(0, h - cfg.crop + 1), rng.integers(0, w - cfg.crop + 1)
        image = image[top : top + cfg.crop, left : left + cfg.crop]
        labels = labels[top : top + cfg.crop, left : left + cfg.crop]
    if cfg.dihedral:
        k = int(rng.integers(4))
        image, labels = np.rot90(image, k), np.rot90(labels, k)
        if rng.random() < 0.5:
            image, labels = image[:, ::-1], labels[:, ::-1]
    image = image.astype(np.float32, copy=True)
    for i, name in enumerate(bands):
        if BANDS[name][1] == "kelvin":
            image[..., i] += np.float32(rng.normal(0.0, cfg.kelvin_offset))
        else:
            gain = rng.uniform(1 - cfg.gain, 1 + cfg.gain)
            image[..., i] = image[..., i] * np.float32(gain) + np.float32(rng.normal(0.0, cfg.offset))
    return image, np.ascontiguousarray(labels)
