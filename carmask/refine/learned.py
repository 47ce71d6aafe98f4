"""A learned refiner at the photo's own resolution: redraws the car's outline from the photo's pixels.

The model's probabilities are upsampled to the photo's size (at most `max_side`: a larger photo is refined
at that size, then upsampled); only a band of `radius` px along the coarse outline may change
(carmask.refine.band). The band is covered by a grid of `tile` px squares; each goes to a small network
(its own ONNX graph beside the model's, opened once through carmask.session) with `margin` px of context on
every side, as four channels: the photo's RGB and the coarse probability, both mapped to [-1, 1]. The
network answers a correction to the coarse logit; the band's pixels take sigmoid(coarse logit + correction),
every other pixel keeps the coarse answer. The cost grows with the outline's length, not the photo's area.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from carmask.refine.band import band_mask, crop

CLIP = 1e-4  # the coarse logit's range: probabilities kept within [CLIP, 1 - CLIP]
# uint8 probability -> its logit, and uint8 -> [-1, 1]: tables, so a tile's inputs cost one lookup a pixel
_P = np.clip(np.arange(256, dtype=np.float64) / 255.0, CLIP, 1 - CLIP)
PRIOR_LOGIT = np.log(_P / (1 - _P)).astype(np.float32)
UNIT = (np.arange(256, dtype=np.float32) * np.float32(2 / 255) - 1).astype(np.float32)


@dataclass(frozen=True)
class LearnedRefine:
    """The manifest's description of the stage (output.refine's "learned" stage)."""

    file: str  # the refiner's ONNX graph, beside the manifest
    sha256: str = ""  # the graph's hash, checked at load
    radius: int = 8  # the band: pixels within this many px of the coarse outline may change
    tile: int = 32  # the grid's squares, px
    margin: int = 8  # context around each square, px (the network's sides are multiples of 4)
    max_side: int = 2048  # larger photos are refined at this longest side, then upsampled
    batch: int = 64  # squares per network call (bounds the memory a huge outline takes)

    def __post_init__(self) -> None:
        if not isinstance(self.file, str) or not self.file.endswith(".onnx"):
            raise ValueError(f"refine: a learned stage needs its ONNX file, got {self.file!r}")
        numbers = {"radius": self.radius, "tile": self.tile, "margin": self.margin, "max_side": self.max_side,
                   "batch": self.batch}  # fmt: skip
        if any(not isinstance(v, int) or v < 1 for v in numbers.values()):
            raise ValueError(f"refine: {numbers} must be positive integers")
        if (self.tile + 2 * self.margin) % 4:
            raise ValueError(f"refine: tile + 2 margin ({self.tile + 2 * self.margin}) must be a multiple of 4")

    def work_size(self, photo_size: tuple[int, int]) -> tuple[int, int]:
        """The size the photo is refined at: its own, or shrunk to `max_side`."""
        scale = min(1.0, self.max_side / max(photo_size))
        return (max(1, round(photo_size[0] * scale)), max(1, round(photo_size[1] * scale)))


def tile_inputs(stacked: np.ndarray) -> np.ndarray:
    """(..., 4) uint8 RGB + probability to the network's float32 inputs in [-1, 1]."""
    return UNIT[stacked]


def grid_tiles(band: np.ndarray, tile: int) -> np.ndarray:
    """(n, 2) top-left corners of the `tile`-px grid squares that hold a band pixel."""
    height, width = band.shape
    rows, cols = -(-height // tile), -(-width // tile)
    padded = np.zeros((rows * tile, cols * tile), bool)
    padded[:height, :width] = band
    hit = padded.reshape(rows, tile, cols, tile).any(axis=(1, 3))
    return np.argwhere(hit) * tile


class EdgeRefiner:
    """The stage with its ONNX session (opened once): `refine` at the working size, `at_photo` around it."""

    def __init__(self, spec: LearnedRefine, session):
        self.spec, self.session = spec, session
        self.input_name = session.get_inputs()[0].name

    def _corrections(self, x: np.ndarray) -> np.ndarray:
        """(n, s, s, 4) float32 inputs -> (n, s, s) corrections, `batch` squares per call."""
        out = [self.session.run(None, {self.input_name: x[i : i + self.spec.batch]})[0]
               for i in range(0, len(x), self.spec.batch)]  # fmt: skip
        return np.concatenate(out)[..., 0]

    def refine(self, prob_u8: np.ndarray, rgb: np.ndarray) -> np.ndarray:
        """(H, W) uint8 probabilities and (H, W, 3) uint8 RGB of one size -> refined uint8 probabilities."""
        if rgb.shape[:2] != prob_u8.shape:
            raise ValueError(f"refine: photo {rgb.shape[:2]} and probabilities {prob_u8.shape} differ in size")
        spec = self.spec
        band = band_mask(prob_u8, spec.radius)
        corners = grid_tiles(band, spec.tile)
        if len(corners) == 0:
            return prob_u8
        side, m, t = spec.tile + 2 * spec.margin, spec.margin, spec.tile
        tiles = np.empty((len(corners), side, side, 4), np.uint8)  # RGB and probability, stacked per tile only
        near = np.empty((len(corners), t, t), bool)
        for i, (y, x) in enumerate(corners):
            tiles[i, ..., :3] = crop(rgb, y - m, x - m, side)
            tiles[i, ..., 3] = crop(prob_u8, y - m, x - m, side)
            near[i] = crop(band, y, x, t)
        correction = self._corrections(tile_inputs(tiles))[:, m : m + t, m : m + t]
        coarse = tiles[:, m : m + t, m : m + t, 3]
        refined = 255.0 / (1.0 + np.exp(-(PRIOR_LOGIT[coarse] + correction)))
        cores = np.where(near, np.clip(refined + 0.5, 0, 255).astype(np.uint8), coarse)
        out = prob_u8.copy()
        for (y, x), core in zip(corners, cores, strict=True):
            window = out[y : y + t, x : x + t]  # a square at the photo's edge is cut to fit
            window[...] = core[: window.shape[0], : window.shape[1]]
        return out

    def at_photo(self, prob_u8: np.ndarray, image) -> np.ndarray:
        """Probabilities at the photo's size, refined at the stage's working size from `image` (a Pillow
        RGB image of the photo, at least that large, e.g. a draft decode), back at the photo's size."""
        photo_size = prob_u8.shape[::-1]
        work = self.spec.work_size(photo_size)
        if image.size != work:
            image = image.resize(work, resample=2)  # bilinear; Pillow antialiases when shrinking
        rgb = np.asarray(image, dtype=np.uint8)
        if work == photo_size:
            return self.refine(prob_u8, rgb)
        small = cv2.resize(prob_u8, work, interpolation=cv2.INTER_AREA)
        return cv2.resize(self.refine(small, rgb), photo_size, interpolation=cv2.INTER_LINEAR)
