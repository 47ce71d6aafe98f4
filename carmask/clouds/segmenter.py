"""The patch segmenter: a multi-class ONNX model over multi-band patches, with its manifest.

The manifest says which bands the model takes (by name, in order), their normalisation, the fill value,
the side limits and the classes; this object reads a patch (carmask.clouds.patches), picks its bands, pads the
sides to the model's multiple, runs the session (opened once, carmask.session) and returns the class map
(carmask.clouds.cover.FILL where the patch has no data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from carmask.clouds.cover import FILL
from carmask.clouds.patches import check_size, read_patch, select_bands, valid_pixels
from carmask.manifest import Manifest, ManifestError, load_manifest
from carmask.preprocess import Normalisation
from carmask.session import ModelSession


@dataclass
class PatchResult:
    class_map: np.ndarray  # (H, W) uint8 class indices, FILL where the patch has no data
    probabilities: np.ndarray  # (H, W, classes) float32 softmax


def pad_to_multiple(x: np.ndarray, multiple: int) -> np.ndarray:
    """(N, H, W, C) padded at the bottom and right to sides divisible by `multiple` (mirrored edges)."""
    h, w = x.shape[1:3]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return x
    mode = "reflect" if ph < h and pw < w else "edge"
    return np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)


def patch_inputs(
    patches: np.ndarray, normalisation: Normalisation, nodata: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, bands) physical values -> (model input, valid (N, H, W)): normalised per band, fill set to 0
    (the band mean), as the model was trained (training.clouds feeds its checkpoints through here too)."""
    valid = valid_pixels(patches, nodata)
    x = normalisation.apply(patches)  # (value * scale - mean) / std per band
    x[~valid] = 0.0
    return x, valid


class PatchSegmenter(ModelSession):
    """Multi-band patches in, class maps out, exactly as the manifest describes the model."""

    def __init__(
        self,
        manifest: str | Path | Manifest,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        flip_tta: bool = False,
    ):
        manifest = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
        if not manifest.input.bands or not manifest.output.classes:
            raise ManifestError(f"{manifest.path}: a multi-band model's manifest must list its bands and classes")
        super().__init__(manifest, providers, threads)
        self.flip_tta = flip_tta

    @property
    def band_names(self) -> list[str]:
        return self.manifest.input.band_names

    @property
    def class_names(self) -> list[str]:
        return self.manifest.output.class_names

    def read(self, source, band_order: Sequence[str] | None = None) -> np.ndarray:
        """A patch file (bytes or path) as the model's bands; PatchError says what does not fit."""
        patch = select_bands(read_patch(source), self.band_names, band_order)
        spec = self.manifest.input
        if spec.min_side or spec.max_side:
            check_size(patch, spec.min_side or 1, spec.max_side or 1 << 30)
        return patch

    def probabilities(self, patches: np.ndarray) -> np.ndarray:
        """(N, H, W, bands) physical values -> (N, H, W, classes) softmax; fill pixels enter as the band mean."""
        return self._probabilities(self._inputs(patches)[0])

    def classify(self, patch: np.ndarray) -> PatchResult:
        """One (H, W, bands) patch to its class map and probabilities."""
        x, valid = self._inputs(patch[None])
        prob = self._probabilities(x)[0]
        class_map = prob.argmax(axis=-1).astype(np.uint8)
        class_map[~valid[0]] = FILL
        return PatchResult(class_map, prob)

    def _inputs(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spec = self.manifest.input
        return patch_inputs(patches, spec.normalisation, spec.nodata)

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        prob = self._run(x)
        if self.flip_tta:
            prob = 0.5 * (prob + self._run(np.ascontiguousarray(x[:, :, ::-1]))[:, :, ::-1])
        return prob

    def _run(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[1:3]
        padded = pad_to_multiple(x, self.manifest.input.multiple_of)
        out = self.session.run([self.output_name], {self.input_name: padded})[0]
        return out[:, :h, :w].astype(np.float32, copy=False)

    def segment(self, source, band_order: Sequence[str] | None = None) -> PatchResult:
        return self.classify(self.read(source, band_order))
