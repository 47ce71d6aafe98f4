"""Synthetic clouds and their shadows drawn over a training crop, labelled as they are drawn.

29 labelled patches hold few cloud edges, few thin clouds over each kind of ground, and one sensor. Clouds
are easy to draw physically: an opacity field (fractal noise, cut by a threshold so it has edges and holes)
blends the ground with a bright, nearly grey cloud spectrum; the shadow is the same field shifted along a
random sun direction, darkening the ground by a random factor (more in the visible than in NIR is not
assumed: diffuse light keeps it grey). Thin cloud where the opacity is moderate, thick where it is high;
pixels the drawn cloud barely touches keep their label. Plain NumPy/SciPy, on reflectance bands (a kelvin band,
if any, is cooled under the cloud). The idea follows satellite-cloud-generator (Czerkawski et al. 2023), which
is PyTorch: nothing of it is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

CLEAR, THIN, THICK, SHADOW = 0, 1, 2, 3


@dataclass
class SyntheticClouds:
    probability: float = 0.0  # share of crops that get a drawn cloud
    coverage: tuple[float, float] = (0.05, 0.6)  # share of the crop the cloud covers
    thin_below: float = 0.55  # opacity under this (and over `touch`) is labelled thin cloud
    touch: float = 0.12  # opacity under this keeps the ground's label
    shadow_probability: float = 0.6


def fractal_noise(h: int, w: int, rng: np.random.Generator, octaves: int = 5, persistence: float = 0.55) -> np.ndarray:
    """(h, w) noise in [0, 1]: octaves of smoothly upsampled random grids, coarse ones strongest."""
    out = np.zeros((h, w), np.float32)
    amplitude, total = 1.0, 0.0
    for octave in range(octaves):
        cells = 2 ** (octave + 1)
        grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
        out += amplitude * ndimage.zoom(grid, (h / (cells + 1), w / (cells + 1)), order=3, mode="nearest")[:h, :w]
        total += amplitude
        amplitude *= persistence
    out /= total
    return (out - out.min()) / max(float(np.ptp(out)), 1e-6)


def opacity_field(h: int, w: int, cfg: SyntheticClouds, rng: np.random.Generator) -> np.ndarray:
    """(h, w) cloud opacity in [0, 1] covering about U(cfg.coverage) of the crop, with soft edges."""
    noise = fractal_noise(h, w, rng)
    cut = np.quantile(noise, 1.0 - rng.uniform(*cfg.coverage))
    softness = rng.uniform(0.04, 0.25)  # sharp cumulus edge ... diffuse cirrus edge
    return np.clip((noise - cut) / softness, 0.0, 1.0) * np.float32(rng.uniform(0.5, 1.0))


def draw_clouds(
    image: np.ndarray, labels: np.ndarray, units: list[str], cfg: SyntheticClouds, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A cloud (and maybe its shadow) drawn over `image` (H, W, bands), `labels` updated (255 fill untouched)."""
    h, w = labels.shape
    alpha = opacity_field(h, w, cfg, rng)
    reflective = np.array([u == "reflectance" for u in units])
    image, labels = image.copy(), labels.copy()
    fill = labels == 255
    if rng.random() < cfg.shadow_probability:
        shift = rng.uniform(0.05, 0.3) * min(h, w) * np.array([np.sin(a := rng.uniform(0, 2 * np.pi)), np.cos(a)])
        beta = ndimage.shift(alpha, shift, order=1, mode="constant", cval=0.0)
        darkness = np.float32(rng.uniform(0.35, 0.75))  # the ground keeps this much less light under full shadow
        image[..., reflective] *= (1.0 - darkness * beta)[..., None]
        labels[(beta > 0.5) & (alpha < 0.02) & (labels == CLEAR)] = SHADOW  # shadow where no cloud veils it
    # Cloud spectrum: bright, a little bluer than grey; texture so it is not a flat sheet.
    level = rng.uniform(0.3, 0.9)
    spectrum = np.float32(level) * rng.uniform(0.92, 1.08, reflective.sum()).astype(np.float32)
    texture = 1.0 + 0.15 * (fractal_noise(h, w, rng, octaves=4) - 0.5)
    cloud = spectrum[None, None] * texture[..., None]
    a = alpha[..., None]
    image[..., reflective] = image[..., reflective] * (1.0 - a) + cloud * a
    if (~reflective).any():  # thermal: the cloud top is colder
        image[..., ~reflective] -= (alpha * np.float32(rng.uniform(5, 30)))[..., None]
    labels[(alpha >= cfg.touch) & (alpha < cfg.thin_below) & ~fill] = THIN
    labels[(alpha >= cfg.thin_below) & ~fill] = THICK
    return image, labels
