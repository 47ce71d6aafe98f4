"""Joint image+label augmentation: one random affine transform applied to both, then photometric jitter.

Reproduces the transform of Keras' `ImageDataGenerator` (rotation, width/height
shift, shear in degrees, zoom, horizontal flip, fill mode) in NumPy/SciPy so it
runs under any Keras backend, and adds what ordinary photos need: a random crop
of random aspect (the car fills the frame, is cut off, or is squashed otherwise
than in a 3:2 studio shot), resampled straight to the model's input size. The
label is warped with the same transform and re-binarised, so it still covers the
warped car; ignored pixels (255) stay ignored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
from scipy import ndimage

from training.data.photometric import PhotometricConfig, photometric
from training.data.sources.base import IGNORE


@dataclass(frozen=True)
class AugmentConfig:
    rotation: float = 0.0  # degrees, uniform in [-rotation, rotation]
    width_shift: float = 0.0  # fraction of width
    height_shift: float = 0.0  # fraction of height
    shear: float = 0.0  # degrees (as in ImageDataGenerator)
    zoom: float = 0.0  # zoom factors uniform in [1 - zoom, 1 + zoom], per axis
    horizontal_flip: bool = False
    fill_mode: str = "nearest"  # scipy.ndimage modes: nearest, constant, reflect, wrap
    crop: float = 0.0  # probability of a random crop
    crop_scale: float = 1.0  # a crop keeps at least this fraction of the area
    aspect: float = 0.0  # a crop's aspect changes by a factor in [exp(-aspect), exp(aspect)]
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)

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
    # Ordinary photos: any framing and aspect, tilted phones, poor light, blur and heavy JPEG.
    "photos": AugmentConfig(
        rotation=10,
        shear=2,
        zoom=0.1,
        horizontal_flip=True,
        crop=0.6,
        crop_scale=0.35,
        aspect=0.35,
        photometric=PhotometricConfig(colour=0.35, hue=0.08, grayscale=0.05, blur=0.3, noise=0.2, jpeg=0.5),
    ),
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


def random_crop(
    rng: np.random.Generator, cfg: AugmentConfig, in_shape: tuple[int, int], out_shape: tuple[int, int]
) -> np.ndarray:
    """A 3x3 matrix from output (row, col) to input (row, col): a random crop (or the whole input) resampled
    to `out_shape`."""
    box_h = box_w = 1.0
    centre_y = centre_x = 0.5
    if cfg.crop and rng.random() < cfg.crop:
        area = rng.uniform(cfg.crop_scale, 1.0)
        ratio = np.exp(rng.uniform(-cfg.aspect, cfg.aspect))
        box_h, box_w = min(1.0, np.sqrt(area / ratio)), min(1.0, np.sqrt(area * ratio))
        centre_y, centre_x = rng.uniform(box_h / 2, 1 - box_h / 2), rng.uniform(box_w / 2, 1 - box_w / 2)
    sy, sx = box_h * in_shape[0] / out_shape[0], box_w * in_shape[1] / out_shape[1]
    ty = (centre_y - box_h / 2) * in_shape[0] + 0.5 * sy - 0.5  # pixel centres line up
    tx = (centre_x - box_w / 2) * in_shape[1] + 0.5 * sx - 0.5
    return np.array([[sy, 0, ty], [0, sx, tx], [0, 0, 1]])


def _warp_label(label: np.ndarray, linear, offset, out_shape, fill_mode: str) -> np.ndarray:
    def warp(plane: np.ndarray) -> np.ndarray:
        return ndimage.affine_transform(
            plane.astype(np.float32), linear, offset, output_shape=out_shape, order=1, mode=fill_mode
        )

    out = (warp(label == 1) >= 0.5).astype(np.uint8)
    if (label == IGNORE).any():
        out[warp(label == IGNORE) >= 0.5] = IGNORE
    return out


def apply_affine(
    image: np.ndarray,
    mask: np.ndarray,
    matrix: np.ndarray,
    flip: bool,
    fill_mode: str = "nearest",
    out_shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp an (H, W, C) image and its (H, W) label (0/1, 255 ignored) with the same transform."""
    out_shape = out_shape or mask.shape
    if not np.allclose(matrix, np.eye(3)) or out_shape != mask.shape:
        linear, offset = matrix[:2, :2], matrix[:2, 2]
        channels = [
            ndimage.affine_transform(image[..., c], linear, offset, output_shape=out_shape, order=1, mode=fill_mode)
            for c in range(image.shape[-1])
        ]
        image = np.stack(channels, axis=-1)
        mask = _warp_label(mask, linear, offset, out_shape, fill_mode)
    if flip:
        image, mask = image[:, ::-1], mask[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def augment(
    rng: np.random.Generator,
    cfg: AugmentConfig,
    image: np.ndarray,
    mask: np.ndarray,
    out_shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply one random draw of `cfg` to an image and its label, resampled to `out_shape` (h, w)."""
    out_shape = out_shape or mask.shape
    if cfg.is_identity and out_shape == mask.shape:
        return image, mask
    matrix, flip = random_affine(rng, cfg, *out_shape)
    matrix = random_crop(rng, cfg, mask.shape, out_shape) @ matrix
    image, mask = apply_affine(image, mask, matrix, flip, cfg.fill_mode, out_shape)
    return photometric(rng, cfg.photometric, image), mask
