"""rembg's u2netp (U^2-Net, Qin et al. 2020; Apache-2.0) as a teacher: 320 x 320, the peer we compare with."""

from __future__ import annotations

import numpy as np
from PIL import Image

from training.teachers.base import TeacherError, to_photo_size
from training.weights.fetch import DEFAULT_DIR


class U2netp:
    name = "u2netp"

    def __init__(self, weights_dir=DEFAULT_DIR):
        from training.weights.u2netp import u2netp_session

        try:
            self.session, _ = u2netp_session(weights_dir)
        except SystemExit as exc:  # the session helper exits with what to run; a teacher raises it
            raise TeacherError(str(exc)) from None

    def key(self) -> str:
        return "u2netp:rembg:320"

    def probabilities(self, photo: Image.Image) -> np.ndarray:
        mask = self.session.predict(photo.convert("RGB"))[0]  # rembg's own pre- and post-processing, 8-bit
        return to_photo_size(np.asarray(mask.convert("L"), np.float32) / 255.0, photo.size)
