"""Our own shipped model as a teacher, with horizontal-flip test-time augmentation, served post-processing
(main subject, refinement) and the probabilities upsampled to the photo's size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from carmask.preprocess import upsample_probabilities


class CarmaskTeacher:
    name = "carmask"

    def __init__(self, manifest: Path | None = None, threads: int = 0):
        from carmask.inference import DEFAULT_MODEL, Segmenter

        self.segmenter = Segmenter(
            manifest or DEFAULT_MODEL, providers=["CPUExecutionProvider"], threads=threads, flip_tta=True
        )

    def key(self) -> str:
        m = self.segmenter.manifest
        return f"carmask:{m.name}:{m.version}:{m.sha256[:12]}:{json.dumps(m.output.subject, sort_keys=True)}:fliptta"

    def probabilities(self, photo: Image.Image) -> np.ndarray:
        s = self.segmenter
        pixels = s.fit.pixels(photo.convert("RGB"))
        prob = s.probabilities(pixels[None])[0]
        content = s.content(prob, photo.size, s.threshold, pixels=pixels)
        return upsample_probabilities(content, photo.size).astype(np.float32) / 255.0
