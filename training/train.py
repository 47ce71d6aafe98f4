"""The training loop: epoch start, steps, validation, epoch end, checkpoint.

Reads top to bottom. Uses only backend-neutral Keras calls (`train_on_batch`,
`predict_on_batch`), so `KERAS_BACKEND=jax` or `torch` trains the same model.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from carmask.metrics import per_image_scores
from carmask.preprocess import Normalisation
from carmask.settings import to_jsonable
from training.config import TrainConfig
from training.data.cache import load_arrays
from training.data.dataset import SegmentationBatches
from training.data.reader import read_carvana
from training.data.split import read_split, split_by_car, write_split
from training.losses import get_loss
from training.model.unet import build_unet

NORMALISATION = Normalisation()  # pixel / 255; written into the exported manifest
LOG_FIELDS = ["epoch", "lr", "train_loss", "val_loss", "val_dice", "val_iou", "val_accuracy", "seconds"]


@dataclass
class RunState:
    """What a resumed run needs beyond the model and optimizer."""

    epoch: int = 0  # next epoch to run
    best_dice: float = -1.0
    best_epoch: int = -1
    epochs_without_improvement: int = 0
    history: list[dict] = field(default_factory=list)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RunState:
        return cls(**json.loads(path.read_text()))


def cosine_lr(cfg: TrainConfig, epoch: int) -> float:
    progress = epoch / max(1, cfg.epochs - 1)
    return cfg.min_learning_rate + 0.5 * (cfg.learning_rate - cfg.min_learning_rate) * (
        1 + math.cos(math.pi * progress)
    )


def validate(model: keras.Model, images: np.ndarray, masks: np.ndarray, cfg: TrainConfig) -> dict[str, float]:
    """Loss and per-image-mean Dice/IoU/accuracy on the validation arrays."""
    loss_fn = get_loss(cfg.loss)
    losses, scores = [], {"dice": [], "iou": [], "accuracy": []}
    for start in range(0, len(images), cfg.batch_size):
        x = NORMALISATION.apply(images[start : start + cfg.batch_size])
        y = masks[start : start + cfg.batch_size].astype(np.float32)[..., None]
        prob = keras.ops.convert_to_numpy(model.predict_on_batch(x))
        losses.append(float(keras.ops.convert_to_numpy(loss_fn(y, prob))) * len(x))
        for key, value in per_image_scores(prob[..., 0] > cfg.threshold, y[..., 0]).items():
            scores[key].extend(value)
    return {"val_loss": sum(losses) / len(images), **{f"val_{k}": float(np.mean(v)) for k, v in scores.items()}}


def _model_and_state(cfg: TrainConfig) -> tuple[keras.Model, RunState]:
    last, state_file = cfg.run_dir / "last.keras", cfg.run_dir / "state.json"
    if cfg.resume and last.is_file() and state_file.is_file():
        print(f"resuming from {last}")
        return keras.models.load_model(last), RunState.load(state_file)
    if cfg.resume:
        print(f"nothing to resume in {cfg.run_dir}; starting afresh")
    keras.utils.set_random_seed(cfg.seed)
    model = build_unet(cfg.unet())
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=get_loss(cfg.loss))
    return model, RunState()


def _write_log(path: Path, history: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(history)


def _plot(path: Path, history: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_dice) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss", yscale="log")
    ax_loss.legend()
    ax_dice.plot(epochs, [h["val_dice"] for h in history], color="tab:green")
    ax_dice.set(xlabel="epoch", ylabel="mean Dice", title="Validation Dice")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _save_model(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    tmp.replace(path)  # a run killed mid-save keeps the previous checkpoint


def run_training(cfg: TrainConfig) -> RunState:
    # Set-up: data checked and cached, split fixed, model built or resumed.
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    (cfg.run_dir / "config.json").write_text(json.dumps(to_jsonable(cfg), indent=1))
    samples = read_carvana(cfg.data_dir)[: cfg.max_images]
    split_file = cfg.run_dir / "split.json"
    if cfg.resume and split_file.is_file():
        train_samples, val_samples = read_split(split_file, samples)
    else:
        train_samples, val_samples = split_by_car(samples, cfg.val_fraction, cfg.seed)
        write_split(split_file, train_samples, val_samples, cfg.seed)
    print(f"{len(train_samples)} training / {len(val_samples)} validation photos (split by car)")
    train_images, train_masks = load_arrays(train_samples, cfg.size, cfg.cache_dir, cfg.workers)
    val_images, val_masks = load_arrays(val_samples, cfg.size, cfg.cache_dir, cfg.workers)
    batches = SegmentationBatches(
        train_images, train_masks, cfg.batch_size, NORMALISATION, cfg.augmentation(), shuffle=True, seed=cfg.seed
    )
    model, state = _model_and_state(cfg)

    for epoch in range(state.epoch, cfg.epochs):
        # Epoch start.
        started = time.time()
        lr = cosine_lr(cfg, epoch)
        model.optimizer.learning_rate.assign(lr)
        batches.set_epoch(epoch)

        # Steps.
        losses = []
        progress = tqdm(range(len(batches)), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
        for index in progress:
            x, y = batches[index]
            loss = model.train_on_batch(x, y)
            losses.append(float(loss[0] if isinstance(loss, list | tuple) else loss))
            progress.set_postfix(loss=f"{np.mean(losses):.4f}")

        # Validation.
        scores = validate(model, val_images, val_masks, cfg)

        # Epoch end: log, plot.
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": float(np.mean(losses)), **scores}
        row["seconds"] = round(time.time() - started, 1)
        state.history.append(row)
        _write_log(cfg.run_dir / "log.csv", state.history)
        _plot(cfg.run_dir / "curves.png", state.history)
        print(
            f"epoch {epoch + 1}: loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
            f"val_dice {row['val_dice']:.4f}  ({row['seconds']:.0f} s)",
            flush=True,
        )

        # Checkpoint: best by validation Dice, last with optimizer state.
        if row["val_dice"] > state.best_dice:
            state.best_dice, state.best_epoch = row["val_dice"], epoch + 1
            state.epochs_without_improvement = 0
            _save_model(model, cfg.run_dir / "best.keras")
        else:
            state.epochs_without_improvement += 1
        state.epoch = epoch + 1
        _save_model(model, cfg.run_dir / "last.keras")
        state.save(cfg.run_dir / "state.json")
        if state.epochs_without_improvement >= cfg.patience:
            print(f"early stop: no better validation Dice for {cfg.patience} epochs")
            break

    print(f"best validation Dice {state.best_dice:.4f} at epoch {state.best_epoch}")
    return state
