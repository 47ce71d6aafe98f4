"""Photometric augmentation for the photos users take: colour, light, blur, noise, JPEG quality.

Studio photos are evenly lit, sharp and barely compressed; phone and web photos are none of these. Each
operation fires with its own probability and leaves the label alone (geometry lives in `augment.py`).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageFilter


@dataclass(frozen=True)
class PhotometricConfig:
    colour: float = 0.0  # brightness, contrast and saturation factors in [1 - colour, 1 + colour]
    hue: float = 0.0  # channel gains in [1 - hue, 1 + hue] (white balance / tint)
    grayscale: float = 0.0  # probability
    blur: float = 0.0  # probability of a Gaussian blur, sigma 0.3..1.5 px
    noise: float = 0.0  # probability of Gaussian noise, sigma 2..8 grey levels
    jpeg: float = 0.0  # probability of re-encoding at quality 30..90

    @property
    def is_identity(self) -> bool:
        return self == PhotometricConfig()

    def to_dict(self) -> dict:
        return asdict(self)


def photometric(rng: np.random.Generator, cfg: PhotometricConfig, image: np.ndarray) -> np.ndarray:
    """One random draw of `cfg` applied to an (H, W, 3) uint8 RGB image."""
    if cfg.is_identity:
        return image
    out = image.astype(np.float32)
    if cfg.colour:
        brightness, contrast, saturation = rng.uniform(1 - cfg.colour, 1 + cfg.colour, 3)
        grey = out.mean(axis=-1, keepdims=True)
        out = grey + (out - grey) * saturation
        out = (out - out.mean()) * contrast + out.mean()
        out *= brightness
    if cfg.hue:
        out *= rng.uniform(1 - cfg.hue, 1 + cfg.hue, 3).astype(np.float32)
    if cfg.grayscale and rng.random() < cfg.grayscale:
        out[:] = out.mean(axis=-1, keepdims=True)
    if cfg.noise and rng.random() < cfg.noise:
        out += rng.normal(0, rng.uniform(2, 8), out.shape).astype(np.float32)
    result = np.clip(out, 0, 255).astype(np.uint8)
    if cfg.blur and rng.random() < cfg.blur:
        blurred = Image.fromarray(result).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
        result = np.asarray(blurred)
    if cfg.jpeg and rng.random() < cfg.jpeg:
        buffer = io.BytesIO()
        Image.fromarray(result).save(buffer, "JPEG", quality=int(rng.integers(30, 91)))
        result = np.asarray(Image.open(buffer).convert("RGB"))
    return np.ascontiguousarray(result)
