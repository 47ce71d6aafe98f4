"""Generated car-like photos with exact masks, for tests, the notebook and benchmarks without real data.

A "car" is a red box on a grey photo: its mask is known exactly, and a red-ness model (or a tiny U-Net
trained for a few seconds) segments it, so the whole path from data to masks runs anywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from carmask import rle as rle_codec


def red_box_photo(width: int = 480, height: int = 320, box=(0.25, 0.3, 0.75, 0.8)) -> tuple[Image.Image, np.ndarray]:
    """A grey photo with a red box; returns (image, 0/1 mask of the box)."""
    arr = np.full((height, width, 3), 150, np.uint8)
    x0, y0, x1, y1 = int(box[0] * width), int(box[1] * height), int(box[2] * width), int(box[3] * height)
    arr[y0:y1, x0:x1] = (220, 20, 30)
    mask = np.zeros((height, width), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return Image.fromarray(arr), mask


def make_carvana(root: Path, cars: int = 4, views: int = 2, size=(64, 48), rle_only: bool = False) -> Path:
    """A tiny folder in Kaggle's Carvana layout: red boxes ("cars") on grey photos."""
    (root / "train").mkdir(parents=True, exist_ok=True)
    if not rle_only:
        (root / "train_masks").mkdir(exist_ok=True)
    rows = ["img,rle_mask"]
    rng = np.random.default_rng(0)
    for car in range(cars):
        for view in range(1, views + 1):
            x0, y0 = rng.uniform(0.1, 0.3, 2)
            image, mask = red_box_photo(*size, box=(x0, y0, x0 + 0.5, y0 + 0.5))
            name = f"{car:012x}_{view:02d}"
            image.save(root / "train" / f"{name}.jpg", quality=95)
            if not rle_only:
                Image.fromarray(mask, "L").convert("P").save(root / "train_masks" / f"{name}_mask.gif")
            rows.append(f"{name}.jpg,{rle_codec.encode(mask)}")
    (root / "train_masks.csv").write_text("\n".join(rows) + "\n")
    return root
