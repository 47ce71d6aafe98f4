"""Fit the glass head on a frozen trunk: k-fold over user-photos, then once on everything.

Top to bottom: read the photos and their glass labels, fit each to the model's input as the service does,
run the frozen trunk once over every photo and its mirror image (its decoder features are all the head
sees, so they are computed once, not every epoch), then per fold fit a fresh head on DSMLR and the other
folds' user-photos and measure glass IoU on the held-out fold at each photo's own size, through the served
path (glass inside the car mask). Last, the head that ships is fitted on all of them. Each finished fold is
written to report.json at once; a rerun skips it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
from PIL import Image
from tqdm import tqdm

from carmask.glass import windows_mask
from carmask.imaging import open_photo
from carmask.manifest import load_manifest, sha256_of
from carmask.metrics import bootstrap_interval
from carmask.preprocess import Fit, threshold_u8, upsample_probabilities
from training.data.sources.base import IGNORE
from training.glass.config import GlassConfig
from training.glass.head import attach, build_head, feature_model
from training.glass.labels import GlassPhoto, read_dsmlr_glass, read_user_photo_glass
from training.losses import bce_dice


@dataclass
class Cached:
    """Everything the folds need, at the model's input size; index 2i is photo i, 2i + 1 its mirror."""

    photos: list[GlassPhoto]
    labels: np.ndarray  # (2N, H, W, 1) uint8: 0, 1, IGNORE
    car: np.ndarray  # (2N, H, W) float16 car probability
    context: np.ndarray  # (2N, H/8, W/8, C) float16
    detail: np.ndarray  # (2N, H/2, W/2, C) float16


def fit_label(label: np.ndarray, fit: Fit) -> np.ndarray:
    """A photo-size label to the model's input as `Fit` places the photo; letterbox padding unknown."""
    photo_size = label.shape[::-1]
    _, _, w, h = fit.box(photo_size)
    small = np.asarray(Image.fromarray(label).resize((w, h), Image.Resampling.NEAREST))
    return fit.place(small, photo_size, IGNORE)


def cache_features(photos: list[GlassPhoto], trunk: keras.Model, fit: Fit, norm, batch: int = 16) -> Cached:
    features = feature_model(trunk)
    labels, car, context, detail = [], [], [], []
    for start in tqdm(range(0, len(photos), batch), desc="trunk features", unit="batch"):
        chunk = photos[start : start + batch]
        pixels = np.stack([fit.pixels(open_photo(p.image_path).image) for p in chunk])
        pixels = np.stack([pixels, pixels[:, :, ::-1]], 1).reshape(-1, *pixels.shape[1:])  # photo, mirror
        out = features.predict_on_batch(norm.apply(pixels))
        car.append(np.asarray(out[0][..., 0], np.float16))
        context.append(np.asarray(out[1], np.float16))
        detail.append(np.asarray(out[2], np.float16))
        for p in chunk:
            label = fit_label(p.load_label(), fit)
            labels += [label, label[:, ::-1]]
    return Cached(photos, np.stack(labels)[..., None], *(np.concatenate(a) for a in (car, context, detail)))


def cached_features(photos: list[GlassPhoto], trunk, fit: Fit, norm, config: GlassConfig) -> Cached:
    """`cache_features`, kept in <run_dir>/features/ (NumPy files, memory-mapped) for reruns: the trunk's pass
    over every photo is most of a run's time. Keyed by the trunk, the manifest and the photos."""
    folder = config.run_dir / "features"
    key = hashlib.sha256(json.dumps([sha256_of(config.trunk), sha256_of(config.manifest),
                                     [p.name for p in photos]]).encode()).hexdigest()  # fmt: skip
    arrays = ("labels", "car", "context", "detail")
    if (folder / "key").is_file() and (folder / "key").read_text() == key:
        return Cached(photos, *(np.load(folder / f"{a}.npy", mmap_mode="r") for a in arrays))
    cache = cache_features(photos, trunk, fit, norm)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key").unlink(missing_ok=True)
    for a in arrays:
        np.save(folder / f"{a}.npy", getattr(cache, a))
    (folder / "key").write_text(key)  # last: a half-written cache is never taken
    return cache


def fold_of(photos: list[GlassPhoto], folds: int, seed: int) -> np.ndarray:
    """Each user-photo's fold (0..folds-1), balanced per group; DSMLR photos -1 (always training)."""
    fold = np.full(len(photos), -1)
    rng = np.random.default_rng(seed)
    for group in sorted({p.group for p in photos} - {"dsmlr"}):
        idx = rng.permutation([i for i, p in enumerate(photos) if p.group == group])
        fold[idx] = (np.arange(len(idx)) + rng.integers(folds)) % folds
    return fold


def fit_head(cache: Cached, train: np.ndarray, config: GlassConfig, desc: str) -> keras.Model:
    """A fresh head on the photos `train` (indices of photos; each is seen with its mirror at random)."""
    keras.utils.set_random_seed(config.seed)
    head = build_head(cache.context.shape[-1], cache.detail.shape[-1], config.width)
    head.compile(keras.optimizers.Adam(config.learning_rate), loss=bce_dice)
    repeat = np.array([1 if cache.photos[i].group == "dsmlr" else config.user_photo_repeat for i in train])
    pool = np.repeat(train, repeat)
    rng = np.random.default_rng(config.seed)
    steps = len(pool) // config.batch_size
    for epoch in tqdm(range(config.epochs), desc=desc, unit="epoch"):
        order = rng.permutation(pool)[: steps * config.batch_size]
        if epoch == int(config.epochs * 0.75):  # a last quarter at a tenth of the rate
            head.optimizer.learning_rate.assign(config.learning_rate / 10)
        for step in range(steps):
            idx = 2 * order[step * config.batch_size : (step + 1) * config.batch_size]
            idx = np.sort(idx + rng.integers(0, 2, len(idx)))  # the photo or its mirror
            context, detail, labels = crop(cache, idx, config.crop, rng)
            head.train_on_batch([context, detail], labels)
    return head


def crop(cache: Cached, idx: np.ndarray, side: int, rng: np.random.Generator):
    """The batch's features and labels over one random `side`-pixel square of the input (a glass window
    needs a neighbourhood, not the whole photo: a quarter of the work per step); whole inputs for side 0."""
    if not side:
        return cache.context[idx], cache.detail[idx], cache.labels[idx]
    h8, w8 = cache.context.shape[1:3]
    s8 = side // 8
    y, x = int(rng.integers(0, h8 - s8 + 1)), int(rng.integers(0, w8 - s8 + 1))
    return (cache.context[idx, y : y + s8, x : x + s8], cache.detail[idx, 4 * y : 4 * (y + s8), 4 * x : 4 * (x + s8)],
            cache.labels[idx, 8 * y : 8 * (y + s8), 8 * x : 8 * (x + s8)])  # fmt: skip


def served_glass(
    car: np.ndarray, glass: np.ndarray, photo_size, fit: Fit, threshold: float, car_threshold: float
) -> np.ndarray:
    """The served windows mask at the photo's size (carmask.glass): glass above `threshold` inside the car
    mask (car above `car_threshold`, the manifest's)."""
    car_mask = threshold_u8(upsample_probabilities(fit.content(car, photo_size), photo_size), car_threshold)
    glass_u8 = upsample_probabilities(fit.content(glass, photo_size), photo_size)
    return windows_mask(glass_u8, car_mask, threshold).astype(bool)


def glass_iou(
    cache: Cached, head: keras.Model, held_out: np.ndarray, fit: Fit, threshold: float, car_threshold: float
) -> list[dict]:
    """Per held-out photo: IoU of the served windows mask against the window label, at the photo's size."""
    rows = []
    for i in held_out:
        glass = head.predict_on_batch([cache.context[2 * i : 2 * i + 1], cache.detail[2 * i : 2 * i + 1]])[0, ..., 0]
        label = cache.photos[i].load_label() == 1
        car = cache.car[2 * i].astype(np.float32)
        pred = served_glass(car, glass, label.shape[::-1], fit, threshold, car_threshold)
        union, inter = int(np.count_nonzero(pred | label)), int(np.count_nonzero(pred & label))
        rows.append({"photo": cache.photos[i].name, "group": cache.photos[i].group,
                     "iou": inter / union if union else 1.0, "intersection": inter, "union": union})  # fmt: skip
    return rows


def summarise(rows: list[dict]) -> dict:
    ious = np.array([r["iou"] for r in rows])
    return {
        "photos": len(rows),
        "mean_iou": float(ious.mean()),
        "iou_interval": [float(v) for v in bootstrap_interval(ious)],
        "pooled_iou": float(sum(r["intersection"] for r in rows) / max(1, sum(r["union"] for r in rows))),
        "p10_p50_p90": [float(q) for q in np.percentile(ious, [10, 50, 90])],
    }


def run(config: GlassConfig) -> dict:
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    report_path = run_dir / "report.json"
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    if report.get("config") != settings:  # folds of other settings are not this run's: start over
        report = {}
    report["config"] = settings
    manifest = load_manifest(config.manifest)
    fit, norm = manifest.input.fit, manifest.input.normalisation

    photos = read_dsmlr_glass(config.dsmlr_dir) + read_user_photo_glass(config.user_photos_dir)
    trunk = keras.models.load_model(config.trunk, compile=False)
    trunk.trainable = False
    cache = cached_features(photos, trunk, fit, norm, config)
    fold = fold_of(photos, config.folds, config.seed)

    folds = report.setdefault("folds", {})
    for k in range(config.folds):
        if str(k) in folds:
            continue
        start = time.perf_counter()
        head = fit_head(cache, np.flatnonzero(fold != k), config, f"fold {k + 1}/{config.folds}")
        rows = glass_iou(cache, head, np.flatnonzero(fold == k), fit, config.threshold, manifest.threshold)
        folds[str(k)] = {**summarise(rows), "minutes": round((time.perf_counter() - start) / 60, 1), "rows": rows}
        write_report(report_path, report)
    every = [r for f in folds.values() for r in f["rows"]]
    report["k_fold"] = {**summarise(every), "by_group": {
        g: summarise([r for r in every if r["group"] == g]) for g in sorted({r["group"] for r in every})}}  # fmt: skip
    report["data"] = {"dsmlr": int(np.sum(fold == -1)), "user_photos": int(np.sum(fold >= 0))}

    head = fit_head(cache, np.arange(len(photos)), config, "final head")
    attach(trunk, head).save(run_dir / "model.keras")
    write_report(report_path, report)
    return report


def write_report(path: Path, report: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(path)  # a run killed while writing keeps the last whole report
