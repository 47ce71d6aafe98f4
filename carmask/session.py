"""The one place an onnxruntime session is opened: provider choice, threads, graph optimisation.

CUDA (or TensorRT) where onnxruntime offers it, else CPU; an explicit list overrides the default, and a
GPU provider that fails to start falls back to CPU with a warning instead of taking the process down.
Every model kind (photos, multi-band patches) opens its session here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from carmask.manifest import Manifest, ManifestError, load_manifest

log = logging.getLogger(__name__)

DEFAULT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
# TensorRT builds engines per input shape at first use; only take it when asked.
AUTO_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def choose_providers(requested: Sequence[str] | None = None) -> list[str]:
    """The requested providers that this onnxruntime build has, CPU always last."""
    available = set(ort.get_available_providers())
    wanted = list(requested) if requested else list(AUTO_PROVIDERS)
    unknown = [p for p in wanted if p not in DEFAULT_PROVIDERS and p not in available]
    if unknown:
        raise ValueError(f"unknown execution provider(s) {unknown}; this build has {sorted(available)}")
    chosen = [p for p in wanted if p in available and p != "CPUExecutionProvider"]
    return [*chosen, "CPUExecutionProvider"]


def open_session(path: str | Path, providers: Sequence[str] | None = None, threads: int = 0) -> ort.InferenceSession:
    """An inference session on the best available provider; `threads` 0 is onnxruntime's default (all cores)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    wanted = choose_providers(providers)
    try:
        return ort.InferenceSession(str(path), options, providers=wanted)
    except Exception as exc:
        if wanted == ["CPUExecutionProvider"]:
            raise
        log.warning("providers %s failed (%s); falling back to CPU", wanted, exc)
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class ModelSession:
    """A manifest and its model's session, opened once: what every segmenter (photos, patches) builds on."""

    def __init__(
        self,
        manifest: str | Path | Manifest,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        flip_tta: bool | None = None,
    ):
        self.manifest = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
        # Mirrored test-time augmentation: as the manifest says, unless the caller says otherwise.
        self.flip_tta = self.manifest.input.flip_tta if flip_tta is None else flip_tta
        self.session = open_session(self.manifest.model_path, providers, threads)
        self.provider = self.session.get_providers()[0]
        self.input_name = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        self.output_name = self.manifest.output.name if self.manifest.output.name in names else names[0]
        glass = self.manifest.output.glass
        if glass.present and glass.name not in names:
            raise ManifestError(f"{self.manifest.path}: output.windows names {glass.name!r}, but the model's "
                                f"outputs are {names}")  # fmt: skip
        log.info("model %s v%s on %s", self.manifest.name, self.manifest.version, self.provider)

    def mirrored(self, run: Callable[[np.ndarray], list[np.ndarray]], x: np.ndarray) -> list[np.ndarray]:
        """`run(x)`'s outputs, averaged with those for the mirror images when `flip_tta` is on: the photos and
        their mirror images go in one call (9 % less time than two on 2 cores), each mirrored answer flipped back."""
        if not self.flip_tta:
            return run(x)
        n = len(x)
        return [0.5 * (out[:n] + out[n:, :, ::-1]) for out in run(np.concatenate([x, x[:, :, ::-1]]))]
