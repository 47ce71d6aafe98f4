"""The learning-rate schedule both training loops (cars, clouds) use: cosine decay over the run."""

from __future__ import annotations

import math


def cosine_lr(epoch: int, epochs: int, learning_rate: float, min_learning_rate: float) -> float:
    """Epoch `epoch` (0-based) of `epochs`: from `learning_rate` down to `min_learning_rate` on a half cosine."""
    progress = epoch / max(1, epochs - 1)
    return min_learning_rate + 0.5 * (learning_rate - min_learning_rate) * (1 + math.cos(math.pi * progress))
