"""The teacher interface: one photo in, the car's probability at the photo's size out."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from PIL import Image


class TeacherError(RuntimeError):
    """A teacher cannot run here (weights or package missing); the message says what to run."""


class Teacher(Protocol):
    name: str

    def key(self) -> str:
        """What its answers depend on (weights, input size): a changed key invalidates its cached answers."""
        ...

    def probabilities(self, photo: Image.Image) -> np.ndarray:
        """(H, W) float32 in [0, 1] at the photo's size: how sure the teacher is that a pixel is car."""
        ...


def to_photo_size(prob: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A teacher's (h, w) probabilities resized bilinearly to the photo's `size` (w, h)."""
    import cv2

    prob = np.clip(np.asarray(prob, np.float32), 0.0, 1.0)
    if prob.shape[::-1] == tuple(size):
        return prob
    return cv2.resize(prob, tuple(size), interpolation=cv2.INTER_LINEAR)
