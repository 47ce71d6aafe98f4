"""Labelled photo sources beside Carvana: DSMLR car parts, DAVIS car sequences, car-free backgrounds.

Every source lists `LabelledPhoto`s: a photo, the group it must not be split from (a car, a sequence, a
scene), and a label loader. Labels are uint8 (H, W) at the photo's size: 0 background, 1 car,
`IGNORE` (255) for pixels that neither the loss nor the metrics count.
"""

from __future__ import annotations

from training.data.sources.base import IGNORE, LabelledPhoto, SourceError

__all__ = ["IGNORE", "LabelledPhoto", "SourceError"]
