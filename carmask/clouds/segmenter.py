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
from carmask.clouds.patches import PatchError, check_size, read_raw, select_bands, valid_pixels
from carmask.clouds.sensors import BandInput, check_range
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
        flip_tta: bool | None = None,
    ):
        manifest = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
        if not manifest.input.bands or not manifest.output.classes:
            raise ManifestError(f"{manifest.path}: a multi-band model's manifest must list its bands and classes")
        super().__init__(manifest, providers, threads, flip_tta)

    @property
    def band_names(self) -> list[str]:
        return self.manifest.input.band_names

    @property
    def class_names(self) -> list[str]:
        return self.manifest.output.class_names

    @property
    def band_units(self) -> list[str]:
        return [b.get("unit", "reflectance") for b in self.manifest.input.bands]

    def read(self, source, band_input: BandInput | Sequence[str] | None = None) -> np.ndarray:
        """A patch file (bytes or path) as the model's bands in physical units; PatchError says what does not
        fit. `band_input`: the file's sensor / band names (a plain list: band names)."""
        patch = self.bands_of(read_raw(source), band_input)
        spec = self.manifest.input
        if spec.min_side or spec.max_side:
            check_size(patch, spec.min_side or 1, spec.max_side or 1 << 30)
        return patch

    def bands_of(
        self, raw: np.ndarray, band_input: BandInput | Sequence[str] | None, nodata: float | None = None
    ) -> np.ndarray:
        """(H, W, file bands) file values -> (H, W, model bands) physical values, range-checked."""
        band_input = BandInput.of(band_input)
        allowed = self.manifest.input.sensors
        if band_input.sensor and allowed and band_input.sensor.name not in allowed:
            raise PatchError(f"{self.manifest.name} takes sensors {', '.join(allowed)}, not {band_input.sensor.name}")
        names = band_input.names(raw.shape[-1], self.band_names)
        picked = select_bands(raw, self.band_names, names)  # picks before converting: only the bands used
        patch = band_input.to_physical(picked, nodata)
        check_range(patch, self.band_names, self.band_units, self.manifest.input.nodata)
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
        return self.mirrored(lambda v: [self._run(v)], x)[0]

    def _run(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[1:3]
        padded = pad_to_multiple(x, self.manifest.input.multiple_of)
        out = self.session.run([self.output_name], {self.input_name: padded})[0]
        return out[:, :h, :w].astype(np.float32, copy=False)

    def segment(self, source, band_input: BandInput | Sequence[str] | None = None) -> PatchResult:
        return self.classify(self.read(source, band_input))
