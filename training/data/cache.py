"""A cache of resized images and masks, decoded once and reused across epochs.

Decoding a 1918x1280 JPEG and GIF costs far more than a training step of a
small U-Net on its 256x256 version; the cache pays that once per data set and
size. Files are keyed by the sample names and size, so a changed folder
rebuilds its cache. Works for any sample with `image_path` and `load_label()`
(Carvana's `Sample`, the other sources' `LabelledPhoto`).
"""

from __future__ import annotations

import hashlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from carmask.preprocess import Fit, load_for_model, resize_mask
from training.data.reader import DatasetError
from training.data.sources.base import IGNORE

CACHE_VERSION = "2"  # 2: DSMLR labels with one hull per photo


def resize_label(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 0/1/255 label to `size` (w, h): car and ignored regions each by area, ignore wins where it covers half."""
    out = resize_mask(label == 1, size)
    ignored = label == IGNORE
    if ignored.any():
        out[resize_mask(ignored, size) == 1] = IGNORE
    return out


def fit_label(label: np.ndarray, fit: Fit) -> np.ndarray:
    """A 0/1/255 label placed as `fit` places its photo; a letterbox's padding is ignored."""
    photo_size = label.shape[::-1]
    _, _, w, h = fit.box(photo_size)
    return fit.place(resize_label(label, (w, h)), photo_size, IGNORE)


def _load_one(args) -> tuple[np.ndarray, np.ndarray] | str:
    sample, fit = args
    try:
        image, _ = load_for_model(sample.image_path, fit)
        mask = fit_label(sample.load_label(), fit)
    except Exception as exc:  # noqa: BLE001 - reported by name, all at once
        return f"{sample.name}: {exc}"
    return image, mask


def _key(samples: list, fit: Fit) -> str:
    placement = repr(fit.size) if fit.aspect_range is None else repr(fit)  # squash keeps its old keys
    # label_key: what a label depends on besides its photo (a teacher's masks); absent for most sources
    text = (
        CACHE_VERSION + placement + "".join(f"{s.image_path.resolve()}{getattr(s, 'label_key', '')}" for s in samples)
    )
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def load_arrays(
    samples: list, fit: Fit | tuple[int, int], cache_dir: Path | None, workers: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, 3) uint8 images and (N, H, W) uint8 labels (0/1, 255 ignored), from cache if present.

    `fit` places each photo in the model's input (a size: squashed to it)."""
    fit = fit if isinstance(fit, Fit) else Fit(tuple(fit))
    size = fit.size
    if cache_dir is not None:
        base = cache_dir / f"{_key(samples, fit)}_{size[0]}x{size[1]}"
        img_file, mask_file = base.with_suffix(".images.npy"), base.with_suffix(".masks.npy")
        if img_file.is_file() and mask_file.is_file():
            return np.load(img_file), np.load(mask_file)

    jobs = [(s, fit) for s in samples]
    # forkserver, not fork: a worker forked from a process with running threads (TensorFlow's, onnxruntime's)
    # can inherit a held lock and wait forever
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
        results = list(tqdm(pool.map(_load_one, jobs, chunksize=8), total=len(jobs), desc="decode", leave=False))
    problems = [r for r in results if isinstance(r, str)]
    if problems:
        raise DatasetError(f"{len(problems)} file(s) could not be decoded:\n  " + "\n  ".join(problems[:20]))
    images = np.stack([r[0] for r in results])
    masks = np.stack([r[1] for r in results])

    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for file, arr in ((img_file, images), (mask_file, masks)):
            tmp = file.with_suffix(".tmp.npy")
            np.save(tmp, arr)
            tmp.replace(file)  # atomic: a killed run never leaves half a cache
    return images, masks
