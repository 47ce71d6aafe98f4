"""The cloud training loop, and leave-one-biome-out cross-validation around it.

Reads top to bottom: patches loaded, band statistics (the normalisation) from the training patches, model
built; per epoch random crops through the dihedral group and band jitter, steps, validation (when there
is a validation split), log, checkpoint. Without a validation split the recipe is fixed and the last
epoch is kept: nothing is tuned on held-out patches. Backend-neutral Keras (`train_on_batch`).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from carmask.clouds.segmenter import patch_inputs
from carmask.preprocess import Normalisation
from carmask.settings import to_jsonable
from training.checkpoints import save_model
from training.clouds.augment import augment_patch
from training.clouds.config import CloudTrainConfig
from training.clouds.data import CLASSES, CloudPatch, band_statistics, biome_folds, load_all, read_l8_biome
from training.clouds.evaluate import headline, print_report, score
from training.clouds.model import build_cloud_model
from training.evaluate import run_normalisation
from training.losses import get_loss
from training.schedule import cosine_lr

TASK = "clouds"


class KerasPatchPredictor:
    """A cloud checkpoint behind the same `probabilities()` call as carmask's PatchSegmenter."""

    def __init__(self, model: keras.Model | Path, normalisation: Normalisation, nodata: float | None = 0.0):
        if not isinstance(model, keras.Model):
            import training.losses  # noqa: F401 - registers the custom losses before loading

            model = keras.models.load_model(model, compile=False)
        self.model, self.normalisation, self.nodata = model, normalisation, nodata

    def probabilities(self, patches: np.ndarray, batch_size: int = 8) -> np.ndarray:
        out = []
        for start in range(0, len(patches), batch_size):
            out.append(
                keras.ops.convert_to_numpy(
                    self.model.predict_on_batch(self.inputs(patches[start : start + batch_size]))
                )
            )
        return np.concatenate(out)

    def inputs(self, patches: np.ndarray) -> np.ndarray:
        return patch_inputs(patches, self.normalisation, self.nodata)[0]  # exactly as at serving time


def evaluate_predictor(predictor, patches: list[CloudPatch], bands: tuple[str, ...]) -> tuple[dict, np.ndarray]:
    images, labels = load_all(patches, bands)
    class_maps = predictor.probabilities(images).argmax(axis=-1).astype(np.uint8)
    return score(class_maps, labels, [p.name for p in patches], [p.biome for p in patches]), class_maps


def run_cloud_training(cfg: CloudTrainConfig, train: list[CloudPatch], val: list[CloudPatch], run_dir: Path) -> dict:
    # Set-up: patches, normalisation from the training patches, model.
    run_dir.mkdir(parents=True, exist_ok=True)
    bands = cfg.band_names
    images, labels = load_all(train, bands)
    mean, std = band_statistics(images, labels)
    normalisation = Normalisation(1.0, tuple(mean), tuple(std))
    model_cfg = cfg.model(len(CLASSES))
    class_weights = cfg.weights(labels)
    config = {
        **to_jsonable(cfg),
        "task": TASK,
        "band_names": list(bands),
        "model": {**to_jsonable(model_cfg.to_dict()), "indices": list(cfg.index_names)},
        "normalisation": to_jsonable(normalisation),
        "loss_class_weights": class_weights,
        "train_patches": [p.name for p in train],
        "val_patches": [p.name for p in val],
    }
    (run_dir / "config.json").write_text(json.dumps(config, indent=1))
    print(f"{len(train)} training patches ({len({p.scene for p in train})} scenes), {len(val)} validation; "
          f"bands {', '.join(bands)}; class weights {class_weights}")  # fmt: skip
    keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_cloud_model(model_cfg, bands, normalisation, cfg.index_names)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=get_loss(cfg.loss, class_weights))
    predictor = KerasPatchPredictor(model, normalisation)
    augment = cfg.augmentation()
    history, best = [], {"score": -1.0, "epoch": 0}

    for epoch in range(cfg.epochs):
        # Epoch start: every patch crops_per_patch times, shuffled.
        started = time.time()
        lr = cosine_lr(epoch, cfg.epochs, cfg.learning_rate, cfg.min_learning_rate)
        model.optimizer.learning_rate.assign(lr)
        order = rng.permutation(np.repeat(np.arange(len(train)), cfg.crops_per_patch))

        # Steps.
        losses = []
        steps = range(0, len(order), cfg.batch_size)
        for start in tqdm(steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False):
            pairs = [
                augment_patch(images[i], labels[i], bands, augment, rng) for i in order[start : start + cfg.batch_size]
            ]
            x = predictor.inputs(np.stack([p[0] for p in pairs]))
            y = np.stack([p[1] for p in pairs])[..., None]
            loss = model.train_on_batch(x, y)
            losses.append(float(loss[0] if isinstance(loss, list | tuple) else loss))

        # Validation (when there is a validation split).
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": float(np.mean(losses))}
        if val:
            report, _ = evaluate_predictor(predictor, val, bands)
            row.update({f"val_{k}": v for k, v in headline(report).items() if k != "patches"})

        # Epoch end: log, checkpoint (best by validation cloud IoU; last always).
        row["seconds"] = round(time.time() - started, 1)
        history.append(row)
        with open(run_dir / "log.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            writer.writeheader()
            writer.writerows(history)
        shown = (
            f"  val cloud IoU {row['val_cloud_iou']:.4f} cover MAE {row['val_cloud_cover_mae_pct']:.2f}" if val else ""
        )
        print(f"epoch {epoch + 1}: loss {row['train_loss']:.4f}{shown}  ({row['seconds']:.0f} s)", flush=True)
        if val and row["val_cloud_iou"] > best["score"]:
            best = {"score": row["val_cloud_iou"], "epoch": epoch + 1}
            save_model(model, run_dir / "best.keras")
        save_model(model, run_dir / "last.keras")

    state = {"epochs_run": cfg.epochs, "best_epoch": best["epoch"] if val else cfg.epochs,
             "train_minutes": round(sum(h["seconds"] for h in history) / 60, 1), "history": history}  # fmt: skip
    (run_dir / "state.json").write_text(json.dumps(state, indent=1))
    if not val:
        (run_dir / "best.keras").unlink(missing_ok=True)
    return state


def train(cfg: CloudTrainConfig) -> dict:
    """One run: train on cfg.train_splits, validate on cfg.val_splits."""
    train_patches = read_l8_biome(cfg.data_dir, cfg.splits(cfg.train_splits))
    val_patches = read_l8_biome(cfg.data_dir, cfg.splits(cfg.val_splits)) if cfg.val_splits else []
    overlap = {p.scene for p in train_patches} & {p.scene for p in val_patches}
    if overlap:
        raise ValueError(f"scenes {sorted(overlap)} are in both the training and the validation splits")
    return run_cloud_training(cfg, train_patches, val_patches, cfg.run_dir)


def cross_validate(cfg: CloudTrainConfig) -> dict:
    """Folds of whole biomes (cfg.folds; 0: leave one biome out): per fold, a model trained on the other
    biomes scores the held-out biomes' patches; the report pools every held-out patch."""
    patches = read_l8_biome(cfg.data_dir, cfg.splits(",".join(filter(None, (cfg.train_splits, cfg.val_splits)))))
    bands, maps, held = cfg.band_names, [], []
    for biome, fold in biome_folds(patches, cfg.folds).items():
        print(f"fold {biome}: {len(fold)} held-out patches")
        held_biomes = {p.biome for p in fold}
        rest = [p for p in patches if p.biome not in held_biomes]
        fold_dir = cfg.run_dir / biome
        run_cloud_training(cfg, rest, [], fold_dir)
        predictor = KerasPatchPredictor(fold_dir / "last.keras", run_normalisation(fold_dir))
        report, class_maps = evaluate_predictor(predictor, fold, bands)
        print_report(f"  held-out {biome}", report)
        maps.append(class_maps)
        held.extend(fold)
    _, labels = load_all(held, bands)
    report = score(np.concatenate(maps), labels, [p.name for p in held], [p.biome for p in held])
    report["folds"] = f"{cfg.folds} folds of whole biomes" if cfg.folds else "leave one biome out"
    (cfg.run_dir / "cv_report.json").write_text(json.dumps(report, indent=1))
    print_report("cross-validation, all folds", report)
    return report
