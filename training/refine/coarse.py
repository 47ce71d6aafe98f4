"""The coarse model's answers for training photos, cached: what the refiner is given at serving time.

For each photo: the served post-processing's probabilities at the model's resolution (the letterbox's
padding cropped off, the subject kept, the manifest's guided filter applied), as uint8 in one .npy file
per photo under a folder named by the model's file hash and its test-time augmentation, so a model never
reads another's answers.
Resumable: photos already cached are skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from carmask.inference import Segmenter
from carmask.preprocess import load_for_model, quantise


def cache_folder(root: Path, segmenter: Segmenter) -> Path:
    """Named by the model file's hash, and "-flip" where the answers average the mirrored photo's (the
    manifest's input.flip_tta): the same file gives other answers then."""
    return Path(root) / (segmenter.manifest.sha256[:12] + ("-flip" if segmenter.flip_tta else ""))


def sample_key(sample) -> str:
    """A file name for a sample, unique within its source (DAVIS names repeat across sequences: 00000.jpg)."""
    return str(Path(sample.name).with_suffix("")).replace("/", "__")


def coarse_path(folder: Path, sample) -> Path:
    return folder / f"{sample_key(sample)}.npy"


def cache_coarse(segmenter: Segmenter, samples: list, folder: Path, batch: int = 8) -> Path:
    """Cache the coarse probabilities (uint8, content size) of every sample not cached yet; the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    todo = [s for s in samples if not coarse_path(folder, s).is_file()]
    for start in tqdm(range(0, len(todo), batch), desc="coarse", unit="batch"):
        chunk = todo[start : start + batch]
        loaded = [load_for_model(s.image_path, segmenter.fit) for s in chunk]
        probs = segmenter.probabilities(np.stack([pixels for pixels, _ in loaded]))
        for sample, (pixels, photo), prob in zip(chunk, loaded, probs, strict=True):
            content = segmenter.content(prob, photo.size, segmenter.threshold, pixels=pixels)
            quantised = quantise(content)
            tmp = coarse_path(folder, sample).with_suffix(".partial.npy")
            np.save(tmp, quantised)
            tmp.rename(coarse_path(folder, sample))
    return folder


def load_coarse(folder: Path, sample) -> np.ndarray:
    """A cached coarse map as float32 probabilities (content size)."""
    return np.load(coarse_path(folder, sample)).astype(np.float32) * np.float32(1 / 255)
