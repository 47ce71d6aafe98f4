"""Joint image+mask augmentation: one random affine transform applied to both.

Reproduces the transform of Keras' `ImageDataGenerator` (rotation, width/height
shift, shear in degrees, zoom, horizontal flip, fill mode) in NumPy/SciPy so it
runs under any Keras backend. The mask is warped with the same transform and
re-binarised, so it still covers the warped car.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class AugmentConfig:
    rotation: float = 0.0  # degrees, uniform in [-rotation, rotation]
    width_shift: float = 0.0  # fraction of width
    height_shift: float = 0.0  # fraction of height
    shear: float = 0.0  # degrees (as in ImageDataGenerator)
    zoom: float = 0.0  # zoom factors uniform in [1 - zoom, 1 + zoom], per axis
    horizontal_flip: bool = False
    fill_mode: str = "nearest"  # scipy.ndimage modes: nearest, constant, reflect, wrap

    @property
    def is_identity(self) -> bool:
        return self == AugmentConfig(fill_mode=self.fill_mode)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    # The original student project's ImageDataGenerator settings.
    "original": AugmentConfig(
        rotation=90, width_shift=0.2, height_shift=0.2, shear=0.2, zoom=0.2, horizontal_flip=True
    ),
    # Turntable photos are upright and centred: small geometric jitter only.
    "mild": AugmentConfig(rotation=5, width_shift=0.05, height_shift=0.05, shear=0.2, zoom=0.1, horizontal_flip=True),
}


def preset(name: str, **overrides) -> AugmentConfig:
    """A named preset with some parameters overridden (None values are ignored)."""
    if name not in PRESETS:
        raise ValueError(f"unknown augmentation preset {name!r}; choose from {sorted(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def random_affine(rng: np.random.Generator, cfg: AugmentConfig, height: int, width: int) -> tuple[np.ndarray, bool]:
    """Draw one transform: a 3x3 matrix mapping output (row, col) to input, and a flip flag."""
    theta = np.deg2rad(rng.uniform(-cfg.rotation, cfg.rotation)) if cfg.rotation else 0.0
    tx = rng.uniform(-cfg.height_shift, cfg.height_shift) * height if cfg.height_shift else 0.0
    ty = rng.uniform(-cfg.width_shift, cfg.width_shift) * width if cfg.width_shift else 0.0
    shear = np.deg2rad(rng.uniform(-cfg.shear, cfg.shear)) if cfg.shear else 0.0
    zx, zy = rng.uniform(1 - cfg.zoom, 1 + cfg.zoom, 2) if cfg.zoom else (1.0, 1.0)
    flip = bool(cfg.horizontal_flip and rng.random() < 0.5)

    rotate = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    shear_m = np.array([[1, -np.sin(shear), 0], [0, np.cos(shear), 0], [0, 0, 1]])
    zoom_m = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
    matrix = rotate @ shift @ shear_m @ zoom_m
    # Transform about the image centre, as ImageDataGenerator does.
    cy, cx = height / 2 - 0.5, width / 2 - 0.5
    to_centre = np.array([[1, 0, cy], [0, 1, cx], [0, 0, 1]])
    from_centre = np.array([[1, 0, -cy], [0, 1, -cx], [0, 0, 1]])
    return to_centre @ matrix @ from_centre, flip


def apply_affine(
    image: np.ndarray, mask: np.ndarray, matrix: np.ndarray, flip: bool, fill_mode: str = "nearest"
) -> tuple[np.ndarray, np.ndarray]:
    """Warp an (H, W, C) image and its (H, W) mask with the same transform."""
    if not np.allclose(matrix, np.eye(3)):
        linear, offset = matrix[:2, :2], matrix[:2, 2]
        channels = [
            ndimage.affine_transform(image[..., c], linear, offset, order=1, mode=fill_mode)
            for c in range(image.shape[-1])
        ]
        image = np.stack(channels, axis=-1)
        warped = ndimage.affine_transform(mask.astype(np.float32), linear, offset, order=1, mode=fill_mode)
        mask = (warped >= 0.5).astype(np.uint8)
    if flip:
        image, mask = image[:, ::-1], mask[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def augment(
    rng: np.random.Generator, cfg: AugmentConfig, image: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Apply one random transform of `cfg` to an image and its mask."""
    if cfg.is_identity:
        return image, mask
    matrix, flip = random_affine(rng, cfg, *mask.shape)
    return apply_affine(image, mask, matrix, flip, cfg.fill_mode)
