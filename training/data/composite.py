"""Copy-paste composites (after Ghiasi et al. 2021): a Carvana car cut out by its mask, pasted onto a
car-free photo at a random scale, position and flip, its colours jittered apart from the background's.

The studio background is what the Carvana-only model learnt to rely on; pasted cars break that shortcut.
The paste uses a slightly feathered alpha so the model cannot find cars by their hard cut-out edges; the
label is the pasted mask itself, so image and label stay aligned by construction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from training.data.photometric import PhotometricConfig, photometric


@dataclass(frozen=True)
class CompositeConfig:
    min_width: float = 0.25  # the car's width as a fraction of the frame's
    max_width: float = 1.0
    inside: float = 0.75  # at least this fraction of the car's box stays inside the frame
    feather: float = 0.7  # Gaussian sigma (px) of the alpha edge
    car_colour: PhotometricConfig = field(default_factory=lambda: PhotometricConfig(colour=0.3, hue=0.1))

    def to_dict(self) -> dict:
        return asdict(self)


def _bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if not len(rows):
        return None
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def paste(
    rng: np.random.Generator,
    cfg: CompositeConfig,
    car: np.ndarray,
    car_mask: np.ndarray,
    background: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(image, 0/1 label) of `background`'s size with the masked car of `car` pasted in."""
    height, width = background.shape[:2]
    box = _bounding_box(car_mask)
    if box is None:
        return background.copy(), np.zeros((height, width), np.uint8)
    top, bottom, left, right = box
    crop, crop_mask = car[top:bottom, left:right], car_mask[top:bottom, left:right]
    target_w = max(4, round(width * rng.uniform(cfg.min_width, cfg.max_width)))
    target_h = max(4, round(crop.shape[0] * target_w / crop.shape[1]))
    if target_h > height:  # keep the car's aspect; shrink to fit the height
        target_w, target_h = max(4, round(target_w * height / target_h)), height
    crop = np.asarray(Image.fromarray(photometric(rng, cfg.car_colour, crop)).resize((target_w, target_h)))
    alpha_img = Image.fromarray(crop_mask * np.uint8(255)).resize((target_w, target_h), Image.Resampling.BILINEAR)
    label_small = np.asarray(alpha_img) >= 128
    if cfg.feather:
        alpha_img = alpha_img.filter(ImageFilter.GaussianBlur(cfg.feather))
    alpha = np.asarray(alpha_img, np.float32)[..., None] / 255.0
    if rng.random() < 0.5:
        crop, alpha, label_small = crop[:, ::-1], alpha[:, ::-1], label_small[:, ::-1]

    # Position: the box may leave the frame, but at most 1 - `inside` of it on each axis.
    slack_x, slack_y = round((1 - cfg.inside) * target_w), round((1 - cfg.inside) * target_h)
    x0 = int(rng.integers(-slack_x, max(-slack_x, width - target_w + slack_x) + 1))
    y0 = int(rng.integers(-slack_y, max(-slack_y, height - target_h + slack_y) + 1))
    out, label = background.astype(np.float32), np.zeros((height, width), np.uint8)
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(width, x0 + target_w), min(height, y0 + target_h)
    cx0, cy0 = fx0 - x0, fy0 - y0
    region = (slice(fy0, fy1), slice(fx0, fx1))
    part = (slice(cy0, cy0 + fy1 - fy0), slice(cx0, cx0 + fx1 - fx0))
    a = alpha[part]
    out[region] = a * crop[part] + (1 - a) * out[region]
    label[region] = label_small[part]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), label
