"""Pre- and post-processing between a photo and the model, in one place.

Training, evaluation, offline prediction and the service all call these, so a
model sees at serving time exactly the pixels it was trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from carmask.imaging import Photo, open_photo
from carmask.refine import Refine, Refinement
from carmask.subject import Subject


@dataclass(frozen=True)
class Normalisation:
    """pixel -> (pixel * scale - mean) / std, per RGB channel."""

    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (..., 3) RGB pixels to the model's float32 input."""
        out = pixels.astype(np.float32) * np.float32(self.scale)
        out -= np.asarray(self.mean, dtype=np.float32)
        out /= np.asarray(self.std, dtype=np.float32)
        return out


def resize_image(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """An RGB Pillow image to a (height, width, 3) uint8 array of `size` (w, h)."""
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


@dataclass(frozen=True)
class Fit:
    """How a photo of any aspect goes into the model's fixed input, and how the output comes back.

    A photo whose aspect (width / height) lies within `aspect_range` is squashed to the input size, as
    training squashed Carvana's 3:2 and DSMLR's 1:1 photos. One outside it is letterboxed instead: resized
    into the largest centred box of the nearest aspect in range, the rest filled with `fill` (the
    normalisation mean, so the model sees zeros there), and the padding cropped off the output. Squashing
    a 9:16 phone photo would stretch the car 2.7x wider than any car the model learnt from. With no
    range every photo is squashed.
    """

    size: tuple[int, int]  # the model's input (width, height)
    aspect_range: tuple[float, float] | None = None
    fill: tuple[int, int, int] = (0, 0, 0)

    def box(self, photo_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the photo inside the model's input, in input pixels."""
        width, height = self.size
        if self.aspect_range is None:
            return 0, 0, width, height
        low, high = self.aspect_range
        aspect = photo_size[0] / photo_size[1]
        if aspect < low:
            inner = min(width, max(1, round(width * aspect / low)))
            return (width - inner) // 2, 0, inner, height
        if aspect > high:
            inner = min(height, max(1, round(height * high / aspect)))
            return 0, (height - inner) // 2, width, inner
        return 0, 0, width, height

    def place(self, content: np.ndarray, photo_size: tuple[int, int], fill) -> np.ndarray:
        """`content`, already resized to `box(photo_size)`, on a model-size canvas of `fill`."""
        x, y, w, h = self.box(photo_size)
        if (w, h) == self.size:
            return content
        out = np.empty((self.size[1], self.size[0], *content.shape[2:]), content.dtype)
        out[:] = fill
        out[y : y + h, x : x + w] = content
        return out

    def pixels(self, image: Image.Image) -> np.ndarray:
        """An RGB Pillow image to the model's (height, width, 3) uint8 input."""
        _, _, w, h = self.box(image.size)
        return self.place(resize_image(image, (w, h)), image.size, self.fill)

    def content(self, output: np.ndarray, photo_size: tuple[int, int]) -> np.ndarray:
        """The part of a model-size output (H, W, ...) that covers the photo: the padding cropped off."""
        x, y, w, h = self.box(photo_size)
        return output[y : y + h, x : x + w]


def load_for_model(source, fit: Fit | tuple[int, int], max_pixels: int | None = None) -> tuple[np.ndarray, Photo]:
    """Decode a photo (file path or bytes) and fit it to the model's input (a `Fit`, or a size to squash to).

    JPEGs decode in draft mode at the smallest scale still >= the input size, which is
    several times faster than a full decode and is what the model was trained on.
    """
    fit = fit if isinstance(fit, Fit) else Fit(tuple(fit))
    photo = open_photo(source, max_pixels=max_pixels, draft_size=fit.size)
    return fit.pixels(photo.image), photo


def photo_content(
    prob: np.ndarray,
    photo_size: tuple[int, int],
    threshold: float,
    fit: Fit,
    subject: Subject,
    refine: Refine | Refinement,
    pixels: np.ndarray | None = None,
) -> np.ndarray:
    """The served post-processing at the model's size, one place for the service and for evaluation: the
    letterbox's padding cropped off `prob` (and `pixels`, the model's input), the subject kept, then refined
    at the model's resolution (a learned stage at the photo's comes after upsampling)."""
    refine = refine.model if isinstance(refine, Refinement) else refine
    kept = subject.select(fit.content(prob, photo_size), threshold)
    return refine.apply(kept, None if pixels is None else fit.content(pixels, photo_size))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A binary (H, W) mask to `size` (w, h) by area averaging; stays 0/1 uint8."""
    if mask.shape[::-1] == size:
        return (mask > 0).astype(np.uint8)
    img = Image.fromarray(((mask > 0) * 255).astype(np.uint8), "L")
    small = np.asarray(img.resize(size, Image.Resampling.BOX))
    return (small >= 128).astype(np.uint8)


def quantise(prob: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] to uint8 0..255, rounded."""
    return np.clip(prob * 255.0 + 0.5, 0, 255).astype(np.uint8)


def upsample_probabilities(prob: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) probabilities in [0, 1] to `size` (w, h) as uint8 0..255, bilinearly.

    Upsampling probabilities (not a thresholded mask) keeps smooth edges. Enlarging, the common case, is
    OpenCV's 8-bit bilinear resize (half-pixel centres like Pillow's, within one level of it, 9x faster on
    a 1918x1280 photo); shrinking stays with Pillow, whose bilinear filter widens to antialias.
    """
    quantised = quantise(prob)
    height, width = quantised.shape
    if (width, height) == tuple(size):
        return quantised
    if size[0] >= width and size[1] >= height:
        return cv2.resize(quantised, tuple(size), interpolation=cv2.INTER_LINEAR)
    return np.asarray(Image.fromarray(quantised, "L").resize(size, Image.Resampling.BILINEAR))


def threshold_u8(prob_u8: np.ndarray, threshold: float) -> np.ndarray:
    """uint8 probabilities (0..255) to a 0/1 uint8 mask: prob > threshold.

    For an integer p, p > c holds exactly when p > floor(c): comparing with a uint8 keeps NumPy from
    promoting a full-resolution mask to float64 (10x faster on a 1918x1280 photo).
    """
    level = threshold * 255.0
    if level >= 255.0:
        return np.zeros(prob_u8.shape, np.uint8)
    if level < 0.0:
        return np.ones(prob_u8.shape, np.uint8)
    return (prob_u8 > np.uint8(math.floor(level))).view(np.uint8)


def probabilities_to_mask(prob: np.ndarray, size: tuple[int, int], threshold: float = 0.5) -> np.ndarray:
    """Model-resolution probabilities (the padding of a letterboxed photo already cropped off, see
    `Fit.content`) to a 0/1 mask at `size` (w, h)."""
    return threshold_u8(upsample_probabilities(prob, size), threshold)
