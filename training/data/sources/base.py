"""What every source yields: a photo with its group and a label loader (0 background, 1 car, 255 ignore)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.reader import DatasetError

IGNORE = 255


class SourceError(DatasetError):
    """A source folder is missing or malformed; the message names the files."""


@dataclass(frozen=True)
class LabelledPhoto:
    """A photo of one source. Subclasses say how the label is made."""

    name: str
    image_path: Path
    group: str  # split unit: car, sequence or scene

    def load_label(self) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class UnlabelledBackground(LabelledPhoto):
    """A photo known to hold no car: every pixel is background."""

    width: int = 0
    height: int = 0

    def load_label(self) -> np.ndarray:
        from PIL import Image

        with Image.open(self.image_path) as img:
            w, h = img.size
        return np.zeros((h, w), np.uint8)
