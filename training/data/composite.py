"""Copy-paste composites (after Ghiasi et al. 2021): a Carvana car cut out by its mask, pasted onto a
car-free photo at a random scale, position and flip, its colours jittered apart from the background's.

The studio background is what the Carvana-only model learnt to rely on; pasted cars break that shortcut.
The paste uses a slightly feathered alpha so the model cannot find cars by their hard cut-out edges; the
label is the pasted mask itself, so image and label stay aligned by construction. Optionally (`shadow`) the
car casts a soft shadow on the ground under it first, labelled background as in real photos, where a
model that never saw one marks the dark ground under a car as car. Optionally (`floor`) the car stands on a
glossy floor that mirrors it: a flipped, faded, blurred copy under its wheels, also labelled background (the
press and showroom photos users send); and (`studio`) the background is a generated studio backdrop, a
wall fading into a floor, instead of a photo.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training.data.photometric import PhotometricConfig, photometric


@dataclass(frozen=True)
class CompositeConfig:
    min_width: float = 0.25  # the car's width as a fraction of the frame's
    max_width: float = 1.0
    inside: float = 0.75  # at least this fraction of the car's box stays inside the frame
    feather: float = 0.7  # Gaussian sigma (px) of the alpha edge
    shadow: float = 0.0  # probability that the car casts a soft shadow on the ground under it
    shadow_darkness: tuple[float, float] = (0.3, 0.7)  # the shadow's centre keeps 1 - this of the light
    floor: float = 0.0  # probability that the car stands on a glossy floor that mirrors it
    reflection_strength: tuple[float, float] = (0.15, 0.6)  # the mirror image's opacity at the wheels
    studio: float = 0.0  # probability of a generated studio backdrop instead of the background photo
    car_colour: PhotometricConfig = field(default_factory=lambda: PhotometricConfig(colour=0.3, hue=0.1))

    def to_dict(self) -> dict:
        return asdict(self)


def _bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if not len(rows):
        return None
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def cast_shadow(
    rng: np.random.Generator, cfg: CompositeConfig, image: np.ndarray, box: tuple[int, int, int, int]
) -> np.ndarray:
    """`image` (float32, H x W x 3) darkened by a blurred ellipse under the car's box (x0, y0, w, h): the
    contact shadow, a little wider than the car, shifted sideways as a low sun would."""
    x0, y0, w, h = box
    cx, cy = x0 + w * rng.uniform(0.35, 0.65), y0 + h * rng.uniform(0.9, 1.0)
    ax, ay = w * rng.uniform(0.45, 0.6), max(1.0, h * rng.uniform(0.06, 0.15))
    shade = Image.new("L", (image.shape[1], image.shape[0]), 0)
    ImageDraw.Draw(shade).ellipse((cx - ax, cy - ay, cx + ax, cy + ay), fill=255)
    shade = shade.filter(ImageFilter.GaussianBlur(max(1.0, ay / 2)))
    darkness = rng.uniform(*cfg.shadow_darkness)
    return image * (1 - darkness * np.asarray(shade, np.float32)[..., None] / 255.0)


def studio_backdrop(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A showroom: a wall fading into a floor at a random horizon, dark or light, with a vignette and grain."""
    horizon = rng.uniform(0.35, 0.8) * height
    base = rng.uniform(0, 1)
    wall, floor = (
        (rng.uniform(10, 70, 3), rng.uniform(20, 90, 3))
        if base < 0.5
        else (
            rng.uniform(170, 250, 3),
            rng.uniform(140, 240, 3),
        )
    )
    grey = rng.random() < 0.6  # most studios are neutral
    if grey:
        wall, floor = np.full(3, wall.mean()), np.full(3, floor.mean())
    rows = np.arange(height, dtype=np.float32)[:, None]
    blend = np.clip((rows - horizon) / max(1.0, rng.uniform(0.02, 0.2) * height) + 0.5, 0, 1)[..., None]
    image = (1 - blend) * wall + blend * floor  # (H, 1, 3)
    image = np.broadcast_to(image, (height, width, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = np.hypot((xx - width / 2) / width, (yy - horizon) / height)
    image = image * (1 - rng.uniform(0, 0.6) * np.clip(r, 0, 1)[..., None])  # a spot-lit centre
    return np.clip(image + rng.normal(0, rng.uniform(0.5, 4), image.shape), 0, 255).astype(np.float32)


def reflect(
    rng: np.random.Generator,
    cfg: CompositeConfig,
    image: np.ndarray,
    crop: np.ndarray,
    alpha: np.ndarray,
    box: tuple[int, int, int, int],
) -> np.ndarray:
    """`image` with the car mirrored on the floor under its box (x0, y0, w, h): flipped upside down,
    blurred, fading out with distance from the wheels. The label stays background there."""
    x0, y0, w, h = box
    strength = rng.uniform(*cfg.reflection_strength)
    fade = np.clip(1 - np.arange(h, dtype=np.float32) / (h * rng.uniform(0.3, 0.9)), 0, 1)[:, None, None]
    mirrored_alpha = alpha[::-1] * fade * strength
    mirrored = crop[::-1].astype(np.float32)
    sigma = rng.uniform(0, 2.5)
    if sigma > 0.3:
        blurred = Image.fromarray(np.clip(mirrored, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(sigma))
        mirrored = np.asarray(blurred, np.float32)
    top = y0 + h - max(1, round(h * rng.uniform(0.0, 0.03)))  # the mirror line at the tyres' contact
    height, width = image.shape[:2]
    fy0, fy1, fx0, fx1 = max(0, top), min(height, top + h), max(0, x0), min(width, x0 + w)
    if fy1 <= fy0 or fx1 <= fx0:
        return image
    part = (slice(fy0 - top, fy1 - top), slice(fx0 - x0, fx1 - x0))
    a = mirrored_alpha[part]
    out = image.copy()
    out[fy0:fy1, fx0:fx1] = a * mirrored[part] + (1 - a) * out[fy0:fy1, fx0:fx1]
    return out


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
    if cfg.studio and rng.random() < cfg.studio:
        out = studio_backdrop(rng, height, width)
    if cfg.floor and rng.random() < cfg.floor:
        out = reflect(rng, cfg, out, crop, alpha, (x0, y0, target_w, target_h))
    if cfg.shadow and rng.random() < cfg.shadow:
        out = cast_shadow(rng, cfg, out, (x0, y0, target_w, target_h))
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(width, x0 + target_w), min(height, y0 + target_h)
    cx0, cy0 = fx0 - x0, fy0 - y0
    region = (slice(fy0, fy1), slice(fx0, fx1))
    part = (slice(cy0, cy0 + fy1 - fy0), slice(cx0, cx0 + fx1 - fx0))
    a = alpha[part]
    out[region] = a * crop[part] + (1 - a) * out[region]
    label[region] = label_small[part]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), label
