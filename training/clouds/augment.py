"""Augmentation for multi-band patches: the dihedral group, crops at random scales, radiometric jitter, drawn clouds.

A satellite patch has no "up": all 8 flips/90-degree rotations are equally real. Crops give the few
scenes many framings; a random zoom stands in for other ground sampling distances (Sentinel-2's 10 m against
Landsat's 30 m). Radiometry stands in for other sensors and processing levels: a gain per band (spectral
response, calibration), one gain for the whole crop (sun angle), an offset per band, and a haze term that
falls with wavelength (top-of-atmosphere against surface reflectance: negative removes haze). The thermal
band (kelvin) gets an offset only. Synthetic clouds (training.clouds.synthetic) add cloud edges over every
kind of ground. Works on physical values, before normalisation, image and labels together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from training.clouds.bands import BANDS
from training.clouds.synthetic import SyntheticClouds, draw_clouds

# Relative haze per band: Rayleigh-like, strongest in blue, little in NIR and none beyond.
HAZE_WEIGHT = {"blue": 1.0, "green": 0.75, "red": 0.55, "nir": 0.3, "swir1": 0.05, "swir2": 0.02, "cirrus": 0.0}


@dataclass
class PatchAugment:
    crop: int = 128  # training crop side (0: the whole patch)
    dihedral: bool = True
    gain: float = 0.10  # reflectance x U(1 - gain, 1 + gain), per band
    offset: float = 0.01  # reflectance + N(0, offset), per band
    kelvin_offset: float = 3.0  # thermal + N(0, kelvin_offset)
    global_gain: float = 0.0  # every reflectance band x U(1 - g, 1 + g)
    haze: tuple[float, float] = (0.0, 0.0)  # + U(low, high) x HAZE_WEIGHT[band]
    zoom: float = 0.0  # the crop is taken at a scale of 2**U(-zoom, zoom) and resized to `crop`
    clouds: SyntheticClouds = field(default_factory=SyntheticClouds)


def _crop(image: np.ndarray, labels: np.ndarray, side: int, rng: np.random.Generator) -> tuple:
    h, w = labels.shape
    side = min(side, h, w)
    top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    return image[top : top + side, left : left + side], labels[top : top + side, left : left + side]


def _zoomed_crop(image, labels, crop: int, zoom: float, rng: np.random.Generator) -> tuple:
    """A crop covering crop x 2**U(-zoom, zoom) pixels of the patch, resized to crop x crop."""
    scale = 2.0 ** rng.uniform(-zoom, zoom)
    image, labels = _crop(image, labels, round(crop * scale), rng)
    factor = crop / labels.shape[0]
    if abs(factor - 1.0) < 1e-3:
        return image, labels
    image = ndimage.zoom(image, (factor, factor, 1), order=1, mode="nearest")[:crop, :crop]
    labels = ndimage.zoom(labels, factor, order=0, mode="nearest")[:crop, :crop]
    return image, labels


def augment_patch(
    image: np.ndarray, labels: np.ndarray, bands: tuple[str, ...], cfg: PatchAugment, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One augmented (crop, crop, bands) image and its (crop, crop) labels."""
    if cfg.crop and cfg.zoom:
        image, labels = _zoomed_crop(image, labels, cfg.crop, cfg.zoom, rng)
    elif cfg.crop and cfg.crop < min(labels.shape):
        image, labels = _crop(image, labels, cfg.crop, rng)
    if cfg.dihedral:
        k = int(rng.integers(4))
        image, labels = np.rot90(image, k), np.rot90(labels, k)
        if rng.random() < 0.5:
            image, labels = image[:, ::-1], labels[:, ::-1]
    image = image.astype(np.float32, copy=True)
    units = [BANDS[name][1] for name in bands]
    if cfg.clouds.probability and rng.random() < cfg.clouds.probability:
        image, labels = draw_clouds(image, labels, units, cfg.clouds, rng)
    overall = rng.uniform(1 - cfg.global_gain, 1 + cfg.global_gain)
    haze = rng.uniform(*cfg.haze)
    for i, name in enumerate(bands):
        if units[i] == "kelvin":
            image[..., i] += np.float32(rng.normal(0.0, cfg.kelvin_offset))
        else:
            gain = overall * rng.uniform(1 - cfg.gain, 1 + cfg.gain)
            shift = rng.normal(0.0, cfg.offset) + haze * HAZE_WEIGHT.get(name, 0.0)
            image[..., i] = image[..., i] * np.float32(gain) + np.float32(shift)
    return image, np.ascontiguousarray(labels)
