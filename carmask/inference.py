"""The photo segmenter: an ONNX session (carmask.session), created once, reused for every prediction.

Pre-processing comes from the model's manifest. Multi-band patch models have their own segmenter
(carmask.clouds.segmenter) behind the same `manifest` / `provider` interface.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from carmask.glass import Glass, NoGlassError
from carmask.imaging import ImageDecodeError, ImageTooLargeError, Photo, open_photo
from carmask.manifest import Manifest
from carmask.preprocess import Fit, load_for_model, photo_content, threshold_u8, upsample_probabilities
from carmask.refine import QUALITIES
from carmask.refine.learned import EdgeRefiner
from carmask.session import ModelSession, open_session
from carmask.subject import Subject

log = logging.getLogger(__name__)

# The shipped model in a source checkout; containers and installs point CARMASK_MODEL elsewhere.
DEFAULT_MODEL = Path(
    os.environ.get("CARMASK_MODEL", Path(__file__).resolve().parent.parent / "models" / "carmask-v2.json")
)


class Segmenter(ModelSession):
    """An ONNX U-Net with its manifest: photos in, probabilities or masks out."""

    def __init__(
        self,
        manifest: str | Path | Manifest = DEFAULT_MODEL,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        flip_tta: bool | None = None,
        cars: str | None = None,
    ):
        super().__init__(manifest, providers, threads, flip_tta)
        self.cars = cars  # "main" / "all" overrides the manifest's subject mode for every photo; None: the manifest's
        spec = self.manifest.output.refinement.photo  # the learned stage at the photo's resolution, if any
        self.refiner = None if spec is None else EdgeRefiner(
            spec, open_session(self.manifest.beside(spec.file), providers, threads))  # fmt: skip

    @property
    def input_size(self) -> tuple[int, int]:
        return self.manifest.input.size

    @property
    def fit(self) -> Fit:
        """How photos go into the model's input (squashed, or letterboxed outside the manifest's aspects)."""
        return self.manifest.input.fit

    @property
    def threshold(self) -> float:
        return self.manifest.threshold

    @property
    def subject(self) -> Subject:
        """Which regions the mask keeps (the manifest's output.subject, its mode overridden by `cars`)."""
        return self.manifest.output.selection.with_mode(self.cars)

    def content(
        self,
        prob: np.ndarray,
        photo_size: tuple[int, int],
        threshold: float,
        subject: str | None = None,
        pixels: np.ndarray | None = None,
    ) -> np.ndarray:
        """A model-size output to the probabilities of the photo's own content, ready to upsample: the
        letterbox's padding cropped off, only the photo's subject kept (`subject`, "main" or "all",
        overrides the mode for this photo), then refined along the photo's edges as the manifest says,
        guided by `pixels` (the model's input for this photo; None: not refined)."""
        refine = self.manifest.output.refinement
        return photo_content(prob, photo_size, threshold, self.fit, self.subject.with_mode(subject), refine, pixels)

    def at_photo(self, content: np.ndarray, photo_size: tuple[int, int], source, quality: str = "best") -> np.ndarray:
        """`content` (from `content()`) to uint8 probabilities at the photo's size, refined there by the
        manifest's learned stage unless `quality` is "fast". `source`: the photo's path or bytes (decoded again
        at the size the stage works at, a draft decode where the photo is larger), or that decode itself."""
        if quality not in QUALITIES:
            raise ValueError(f"quality must be one of {QUALITIES}, got {quality!r}")
        prob_u8 = upsample_probabilities(content, photo_size)
        if not self.refines(quality):
            return prob_u8
        image = source if isinstance(source, Image.Image) else self.refine_image(source, photo_size)
        return self.refiner.at_photo(prob_u8, image)

    def refines(self, quality: str = "best") -> bool:
        """Whether a mask at the photo's size is refined there (a learned stage, and not quality=fast)."""
        return self.refiner is not None and quality != "fast"

    def refine_image(self, source, photo_size: tuple[int, int]) -> Image.Image:
        """The photo decoded for the learned stage: at its own size up to the stage's max_side, else a draft."""
        return open_photo(source, draft_size=self.refiner.spec.work_size(photo_size)).image

    def glass_content(self, glass: np.ndarray, photo_size: tuple[int, int]) -> np.ndarray:
        """A model-size glass output to the photo's content (the letterbox's padding cropped off), ready to
        upsample; which glass is the car's is decided at the photo's size, by the car mask (carmask.glass)."""
        return self.fit.content(glass, photo_size)

    @property
    def glass(self) -> Glass:
        """The model's glass output (the manifest's output.windows); `glass.present` False when it has none."""
        return self.manifest.output.glass

    def _run(self, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
        spec = self.manifest.input
        if spec.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        outs = self.session.run(names, {self.input_name: np.ascontiguousarray(x)})
        outs = [out[:, 0] if out.ndim == 4 and out.shape[1] == 1 else out[..., 0] for out in outs]
        if self.manifest.output.activation == "none":  # the car output's; a glass output ends in a sigmoid
            outs[0] = 1.0 / (1.0 + np.exp(-outs[0]))
        return [out.astype(np.float32, copy=False) for out in outs]

    def outputs(self, images: np.ndarray, glass: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, H, W, 3) uint8 RGB at the model's size -> (N, H, W) float32 car probabilities, and with `glass`
        the glass probabilities (NoGlassError when the model has no glass output)."""
        if glass and not self.glass.present:
            raise NoGlassError(f"{self.manifest.name} {self.manifest.version} has no glass output")
        names = [self.output_name, *([self.glass.name] if glass else [])]
        x = self.manifest.input.normalisation.apply(images)
        outs = self.mirrored(lambda v: self._run(v, names), x)
        return outs[0], (outs[1] if glass else None)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB at the model's size -> (N, H, W) float32 probabilities."""
        return self.outputs(images)[0]

    def segment_files(
        self,
        sources: Sequence,
        threshold: float | None = None,
        max_pixels: int | None = None,
        seconds=None,
        glass: bool = False,
        quality: str = "best",
    ) -> list:
        """One 0/1 mask at the photo's own size per source (path or bytes), or the decode error for that photo;
        with `glass`, a (mask, glass probabilities as uint8) pair instead of the mask. `quality` "fast" skips
        the learned refinement at the photo's resolution.

        `seconds`, a dict, gathers the time spent in "decode", "model" and "upsample".
        """
        t0 = time.perf_counter()
        results: list[np.ndarray | Exception] = []
        loaded: list[tuple[int, np.ndarray, Photo]] = []
        for i, source in enumerate(sources):
            try:
                loaded.append((i, *load_for_model(source, self.fit, max_pixels)))
                results.append(None)  # filled below
            except (ImageDecodeError, ImageTooLargeError, OSError) as exc:
                results.append(exc)
        t1 = time.perf_counter()
        probs, glasses = self.outputs(np.stack([arr for _, arr, _ in loaded]), glass) if loaded else ([], None)
        t2 = time.perf_counter()
        thr = self.threshold if threshold is None else threshold
        for k, ((i, pixels, photo), prob) in enumerate(zip(loaded, probs, strict=True)):
            content = self.content(prob, photo.size, thr, pixels=pixels)
            results[i] = threshold_u8(self.at_photo(content, photo.size, sources[i], quality), thr)
            if glass:
                glass_u8 = upsample_probabilities(self.glass_content(glasses[k], photo.size), photo.size)
                results[i] = (results[i], glass_u8)
        if seconds is not None:
            for key, spent in (("decode", t1 - t0), ("model", t2 - t1), ("upsample", time.perf_counter() - t2)):
                seconds[key] = seconds.get(key, 0.0) + spent
        return results

    def predict_masks(
        self, sources: Sequence, threshold: float | None = None, max_pixels: int | None = None, quality: str = "best"
    ):
        """Masks (0/1 uint8) at each photo's own size, for file paths or bytes; raises on a bad photo."""
        results = self.segment_files(sources, threshold, max_pixels, quality=quality)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results
