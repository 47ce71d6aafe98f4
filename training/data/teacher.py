"""Teacher masks: a general model's masks that fill the regions a source's own labels leave ignored.

DSMLR labels parts, not whole cars, so the hull around the parts minus the parts is ignored: body panels
the parts miss, but also the strip under the sill between the wheels, where an outdoor photo's contact
shadow lies, so no ordinary photo teaches where a car ends above its shadow. rembg's u2netp (a general
salient-object network) is a teacher for those pixels only: where it is confident (probability at least
`high`: car; at most `low`: background) an ignored pixel takes its answer; the human labels (parts = car,
outside the hull = background) always win, and pixels it is unsure of stay ignored.

`carmask-teacher PHOTOS OUT --teachers u2netp` writes the masks, one 8-bit PNG per photo
(`OUT/teachers/u2netp/<stem>.png`, u2netp's probability x 255 at the photo's size);
`carmask-train --dsmlr-teacher OUT/teachers/u2netp` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.sources.base import IGNORE, SourceError


@dataclass(frozen=True)
class Teacher:
    folder: Path
    low: float = 0.1  # an ignored pixel the teacher gives at most this becomes background
    high: float = 0.9  # ... at least this, car

    def key(self) -> str:
        """What the cached labels depend on (carmask's array cache keys on it)."""
        return f"teacher:{self.folder.resolve()}:{self.low}:{self.high}"

    def fill(self, label: np.ndarray, stem: str) -> np.ndarray:
        """`label` (0/1/255) with its ignored pixels taken from the teacher where it is confident."""
        path = self.folder / f"{stem}.png"
        if not path.is_file():
            raise SourceError(f"no teacher mask {path} (run carmask-teacher for this source)")
        with Image.open(path) as img:
            prob = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        if prob.shape != label.shape:
            raise SourceError(f"teacher mask {path} is {prob.shape[::-1]}, the photo {label.shape[::-1]}")
        out = label.copy()
        ignored = label == IGNORE
        out[ignored & (prob >= self.high)] = 1
        out[ignored & (prob <= self.low)] = 0
        return out
