"""Training tiles along the coarse outline, at the photo's own resolution.

Each photo gives `per_photo` square crops centred on random pixels of the band (within `radius` px of the
coarse mask's outline, carmask.refine.band), each with four channels (the photo's RGB and the coarse
probability, both uint8) and its label: the true mask inside the band, ignored (255) outside it, since the
refiner changes nothing there. Photos are cut in worker processes, one .npz per photo (a rerun skips the
photos already cut), then stacked.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from carmask.imaging import open_photo
from carmask.preprocess import upsample_probabilities
from carmask.refine.band import band_mask, crop
from training.data.sources.base import IGNORE
from training.refine.coarse import load_coarse, sample_key


def photo_tiles(
    rgb: np.ndarray, prob_u8: np.ndarray, truth: np.ndarray, radius: int, size: int, count: int, rng
) -> tuple[np.ndarray, np.ndarray]:
    """(count, size, size, 4) uint8 inputs and (count, size, size) uint8 labels around the coarse outline."""
    band = band_mask(prob_u8, radius)
    ys, xs = np.nonzero(band)
    if len(ys) == 0:
        return np.zeros((0, size, size, 4), np.uint8), np.zeros((0, size, size), np.uint8)
    label = np.where(band, truth, IGNORE).astype(np.uint8)
    stacked = np.concatenate([rgb, prob_u8[..., None]], axis=-1)
    picks = rng.integers(0, len(ys), count)
    x = np.stack([crop(stacked, ys[i] - size // 2, xs[i] - size // 2, size) for i in picks])
    y = np.stack([crop(label, ys[i] - size // 2, xs[i] - size // 2, size) for i in picks])
    return x, y


def _cut_one(job) -> str | None:
    sample, coarse_folder, out_file, radius, size, count, seed = job
    try:
        rgb = np.asarray(open_photo(sample.image_path).image)
        truth = sample.load_label()
        prob_u8 = upsample_probabilities(load_coarse(coarse_folder, sample), truth.shape[::-1])
        x, y = photo_tiles(rgb, prob_u8, truth, radius, size, count, np.random.default_rng(seed))
        tmp = out_file.with_suffix(".partial.npz")
        np.savez(tmp, x=x, y=y)
        tmp.rename(out_file)
    except Exception as exc:  # noqa: BLE001 - reported by name, all at once
        return f"{sample.name}: {exc}"
    return None


def cut_tiles(
    samples: list, coarse_folder: Path, out_dir: Path, radius: int, size: int, per_photo: int,
    seed: int = 0, workers: int = 2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Tiles of every sample (cut once, cached in `out_dir`): inputs, labels, and each tile's group."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / f"{sample_key(s)}.npz" for s in samples]
    jobs = [
        (s, coarse_folder, f, radius, size, per_photo, seed + i)
        for i, (s, f) in enumerate(zip(samples, files, strict=True))
        if not f.is_file()
    ]
    # forkserver, not fork: a worker forked from a process with running threads (TensorFlow's, onnxruntime's)
    # can inherit a held lock and wait forever
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
        problems = [p for p in tqdm(pool.map(_cut_one, jobs, chunksize=4), total=len(jobs), desc="tiles") if p]
    if problems:
        raise RuntimeError(f"{len(problems)} photo(s) could not be cut:\n  " + "\n  ".join(problems[:20]))
    xs, ys, groups = [], [], []
    for sample, file in zip(samples, files, strict=True):
        with np.load(file) as data:
            xs.append(data["x"])
            ys.append(data["y"])
            groups += [sample.group] * len(data["x"])
    return np.concatenate(xs), np.concatenate(ys), np.array(groups)
