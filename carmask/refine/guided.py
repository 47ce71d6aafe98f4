"""Edge-aware refinement of a model's probabilities, guided by the photo the model saw.

The network's output is a little soft along the car's outline; a guided filter (He, Sun and Tang 2010)
fits, in every small window, the probabilities as a linear function of the photo's brightness, so an
edge of the output snaps to the photo's own edge there and stays put where the photo is flat. It runs at
the model's resolution on its own input (the letterbox's padding cropped off from both), before the
probabilities are upsampled: about half a millisecond at 320x320, and the same for every consumer. The
manifest's `output.refine` names it; a manifest without one leaves the probabilities as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

METHODS = ("none", "guided")


@dataclass(frozen=True)
class Refine:
    method: str = "none"  # "none": the network's probabilities as they are; "guided": a guided filter
    radius: int = 2  # the filter's window is (2 radius + 1) pixels square, at the model's resolution
    eps: float = 1e-3  # regularisation: edges of the photo fainter than about sqrt(eps) (0..1 grey) are smoothed

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"refine method must be one of {METHODS}, got {self.method!r}")
        if not isinstance(self.radius, int) or self.radius < 1 or not self.eps > 0:
            raise ValueError(f"refine needs an integer radius >= 1 and eps > 0, got {self.radius}, {self.eps}")

    def apply(self, prob: np.ndarray, pixels: np.ndarray | None) -> np.ndarray:
        """(H, W) probabilities, refined by `pixels` ((H, W, 3) uint8 RGB, the model's input content)."""
        if self.method == "none" or pixels is None:
            return prob
        if pixels.shape[:2] != prob.shape:
            raise ValueError(f"refine: guide {pixels.shape[:2]} and probabilities {prob.shape} differ in size")
        guide = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY).astype(np.float32)
        guide *= np.float32(1 / 255)
        return np.clip(guided_filter(guide, prob.astype(np.float32, copy=False), self.radius, self.eps), 0.0, 1.0)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter of `src` by a grey `guide` (both float32 (H, W)), box windows of `radius`."""
    size = (2 * radius + 1, 2 * radius + 1)

    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size)  # normalised box, edges reflected (OpenCV's default)

    mean_i, mean_p = mean(guide), mean(src)
    a = (mean(guide * src) - mean_i * mean_p) / (mean(guide * guide) - mean_i * mean_i + np.float32(eps))
    b = mean_p - a * mean_i
    return mean(a) * guide + mean(b)
