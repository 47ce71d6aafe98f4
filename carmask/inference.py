"""The ONNX inference session: created once, reused for every prediction.

Provider choice lives here alone: CUDA (or TensorRT) where onnxruntime offers
it, else CPU; an explicit list overrides the default, and a GPU provider that
fails to start falls back to CPU with a warning instead of taking the process
down. Pre-processing comes from the model's manifest.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from carmask.imaging import ImageDecodeError, ImageTooLargeError, Photo
from carmask.manifest import Manifest, load_manifest
from carmask.preprocess import load_for_model, probabilities_to_mask

log = logging.getLogger(__name__)

DEFAULT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
# TensorRT builds engines per input shape at first use; only take it when asked.
AUTO_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
# The shipped model in a source checkout; containers and installs point CARMASK_MODEL elsewhere.
DEFAULT_MODEL = Path(
    os.environ.get("CARMASK_MODEL", Path(__file__).resolve().parent.parent / "models" / "carmask-unet.json")
)


def choose_providers(requested: Sequence[str] | None = None) -> list[str]:
    """The requested providers that this onnxruntime build has, CPU always last."""
    available = set(ort.get_available_providers())
    wanted = list(requested) if requested else list(AUTO_PROVIDERS)
    unknown = [p for p in wanted if p not in DEFAULT_PROVIDERS and p not in available]
    if unknown:
        raise ValueError(f"unknown execution provider(s) {unknown}; this build has {sorted(available)}")
    chosen = [p for p in wanted if p in available and p != "CPUExecutionProvider"]
    return [*chosen, "CPUExecutionProvider"]


class Segmenter:
    """An ONNX U-Net with its manifest: photos in, probabilities or masks out."""

    def __init__(
        self,
        manifest: str | Path | Manifest = DEFAULT_MODEL,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        flip_tta: bool = False,
    ):
        self.manifest = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
        self.flip_tta = flip_tta
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default (all cores)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        path = str(self.manifest.model_path)
        wanted = choose_providers(providers)
        try:
            self.session = ort.InferenceSession(path, options, providers=wanted)
        except Exception as exc:
            if wanted == ["CPUExecutionProvider"]:
                raise
            log.warning("providers %s failed (%s); falling back to CPU", wanted, exc)
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.provider = self.session.get_providers()[0]
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        log.info("model %s v%s on %s", self.manifest.name, self.manifest.version, self.provider)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.manifest.input.size

    @property
    def threshold(self) -> float:
        return self.manifest.threshold

    def _run(self, x: np.ndarray) -> np.ndarray:
        spec = self.manifest.input
        if spec.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        out = self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(x)})[0]
        out = out[:, 0] if out.ndim == 4 and out.shape[1] == 1 else out[..., 0]
        if self.manifest.output.activation == "none":
            out = 1.0 / (1.0 + np.exp(-out))
        return out.astype(np.float32, copy=False)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB at the model's size -> (N, H, W) float32 probabilities."""
        x = self.manifest.input.normalisation.apply(images)
        prob = self._run(x)
        if self.flip_tta:
            prob = 0.5 * (prob + self._run(x[:, :, ::-1])[:, :, ::-1])
        return prob

    def segment_files(
        self, sources: Sequence, threshold: float | None = None, max_pixels: int | None = None, seconds=None
    ) -> list[np.ndarray | Exception]:
        """One 0/1 mask at the photo's own size per source (path or bytes), or the decode error for that photo.

        `seconds`, a dict, gathers the time spent in "decode", "model" and "upsample".
        """
        t0 = time.perf_counter()
        results: list[np.ndarray | Exception] = []
        loaded: list[tuple[int, np.ndarray, Photo]] = []
        for i, source in enumerate(sources):
            try:
                loaded.append((i, *load_for_model(source, self.input_size, max_pixels)))
                results.append(None)  # filled below
            except (ImageDecodeError, ImageTooLargeError, OSError) as exc:
                results.append(exc)
        t1 = time.perf_counter()
        probs = self.probabilities(np.stack([arr for _, arr, _ in loaded])) if loaded else []
        t2 = time.perf_counter()
        thr = self.threshold if threshold is None else threshold
        for (i, _, photo), prob in zip(loaded, probs, strict=True):
            results[i] = probabilities_to_mask(prob, photo.size, thr)
        if seconds is not None:
            for key, spent in (("decode", t1 - t0), ("model", t2 - t1), ("upsample", time.perf_counter() - t2)):
                seconds[key] = seconds.get(key, 0.0) + spent
        return results

    def predict_masks(self, sources: Sequence, threshold: float | None = None, max_pixels: int | None = None):
        """Masks (0/1 uint8) at each photo's own size, for file paths or bytes; raises on a bad photo."""
        results = self.segment_files(sources, threshold, max_pixels)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results
