"""The training loop: epoch start, steps, validation, epoch end, checkpoint.

Reads top to bottom. Validation scores each validation set (Carvana cars, DSMLR test
photos, a held-out DAVIS sequence) apart; the best checkpoint is the one with the best
mean IoU over the sets. Uses only backend-neutral Keras calls (`train_on_batch`,
`predict_on_batch`), so `KERAS_BACKEND=jax` or `torch` trains the same model.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from carmask.metrics import per_image_scores
from carmask.preprocess import Normalisation
from carmask.settings import to_jsonable
from training.checkpoints import save_model, transfer_weights
from training.config import TrainConfig
from training.data.dataset import MixedBatches, prefetched
from training.data.mixture import ValidationSet, describe, training_sources, validation_sets
from training.data.reader import read_carvana
from training.data.sources import IGNORE
from training.data.split import read_split, split_by_car, write_split
from training.losses import get_loss
from training.schedule import cosine_lr

LOG_FIELDS = ["epoch", "lr", "train_loss", "val_loss", "val_dice", "val_iou", "val_accuracy", "seconds"]


@dataclass
class RunState:
    """What a resumed run needs beyond the model and optimizer."""

    epoch: int = 0  # next epoch to run
    best_score: float = -1.0  # mean validation IoU over the validation sets
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


def validate_set(
    model: keras.Model, data: ValidationSet, normalisation: Normalisation, cfg: TrainConfig
) -> dict[str, float]:
    """Loss and per-image-mean Dice/IoU/accuracy on one validation set (ignored pixels left out)."""
    loss_fn = get_loss(cfg.loss)
    losses, scores = [], {"dice": [], "iou": [], "accuracy": []}
    for start in range(0, len(data.images), cfg.batch_size):
        x = normalisation.apply(data.images[start : start + cfg.batch_size])
        labels = data.labels[start : start + cfg.batch_size]
        prob = keras.ops.convert_to_numpy(model.predict_on_batch(x))
        losses.append(float(keras.ops.convert_to_numpy(loss_fn(labels[..., None].astype(np.float32), prob))))
        batch_scores = per_image_scores(prob[..., 0] > cfg.threshold, labels == 1, labels != IGNORE)
        for key, value in batch_scores.items():
            scores[key].extend(value)
    return {"loss": float(np.mean(losses)), **{k: float(np.mean(v)) for k, v in scores.items()}}


def validate(model: keras.Model, sets: list[ValidationSet], normalisation: Normalisation, cfg: TrainConfig) -> dict:
    """Per-set scores (`val_<set>_<metric>`) and their means over the sets (`val_<metric>`)."""
    per_set = {data.name: validate_set(model, data, normalisation, cfg) for data in sets}
    row = {f"val_{k}": float(np.mean([s[k] for s in per_set.values()])) for k in ("loss", "dice", "iou", "accuracy")}
    for name, scores in per_set.items():
        row.update({f"val_{name}_{k}": v for k, v in scores.items() if k != "loss"})
    return row


def _model_and_state(cfg: TrainConfig) -> tuple[keras.Model, RunState]:
    last, state_file = cfg.run_dir / "last.keras", cfg.run_dir / "state.json"
    if cfg.resume and last.is_file() and state_file.is_file():
        print(f"resuming from {last}")
        return keras.models.load_model(last), RunState.load(state_file)
    if cfg.resume:
        print(f"nothing to resume in {cfg.run_dir}; starting afresh")
    keras.utils.set_random_seed(cfg.seed)
    model = cfg.model().build()
    if cfg.init_from is not None:  # a later stage: an earlier run's weights where they fit, a fresh optimizer
        earlier = keras.models.load_model(cfg.init_from, compile=False)
        copied, fresh = transfer_weights(earlier, model)
        print(f"starting from the weights of {cfg.init_from}: {len(copied)} layers copied, {len(fresh)} new")
        if cfg.freeze_copied:  # warm a new head up on fixed features before everything trains together
            if not fresh:
                raise ValueError(f"freeze_copied: {cfg.init_from} supplies every layer, so nothing would train")
            for name in copied:
                model.get_layer(name).trainable = False
            print(f"training only the {len(fresh)} new layers: {', '.join(fresh)}")
    elif cfg.freeze_copied:
        raise ValueError("freeze_copied needs init_from (there is nothing copied to keep fixed)")
    if cfg.freeze_encoder:
        _freeze_encoder(model, cfg)
    if cfg.freeze_batchnorm:
        norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
        for layer in norms:
            layer.trainable = False
        print(f"BatchNorm fixed: {len(norms)} layers in inference mode")
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=get_loss(cfg.loss))
    return model, RunState()


def _freeze_encoder(model: keras.Model, cfg: TrainConfig) -> None:
    """Fix the pretrained encoder's layers: tuning the decoder alone keeps the features other sets rely on."""
    architecture = cfg.model()
    encoder = [layer for layer in model.layers if architecture.is_encoder(layer.name)]
    if not encoder:
        raise ValueError(f"freeze_encoder: the {cfg.architecture} architecture has no pretrained encoder")
    for layer in encoder:
        layer.trainable = False
    print(f"encoder fixed: {len(encoder)} layers; training the other {len(model.layers) - len(encoder)}")


def _write_log(path: Path, history: list[dict]) -> None:
    fields = LOG_FIELDS + [k for k in history[0] if k not in LOG_FIELDS]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
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
    for key in [k for k in history[0] if k.startswith("val_") and k.endswith("_iou") and k != "val_iou"]:
        ax_dice.plot(epochs, [h[key] for h in history], label=key[4:-4])
    ax_dice.plot(epochs, [h["val_iou"] for h in history], color="black", label="mean")
    ax_dice.set(xlabel="epoch", ylabel="mean IoU", title="Validation IoU per set")
    ax_dice.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_training(cfg: TrainConfig) -> RunState:
    # Set-up: data checked and cached, split fixed, model built or resumed.
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    model_cfg = cfg.model()
    normalisation = model_cfg.normalisation
    config = {
        **to_jsonable(cfg),
        "model": to_jsonable(model_cfg.to_dict()),
        "normalisation": to_jsonable(normalisation),
    }
    (cfg.run_dir / "config.json").write_text(json.dumps(config, indent=1))
    samples = read_carvana(cfg.data_dir)[: cfg.max_images]
    split_file = cfg.run_dir / "split.json"
    if cfg.resume and split_file.is_file():
        train_samples, val_samples = read_split(split_file, samples)
    else:
        train_samples, val_samples = split_by_car(samples, cfg.val_fraction, cfg.seed)
        write_split(split_file, train_samples, val_samples, cfg.seed)
    print(f"Carvana: {len(train_samples)} training / {len(val_samples)} validation photos (split by car)")
    sources, val_sets = training_sources(cfg, train_samples), validation_sets(cfg, val_samples)
    print(describe(sources, val_sets))
    batches = MixedBatches(
        sources,
        cfg.batch_size,
        normalisation,
        cfg.augmentation(),
        out_size=cfg.size,
        source_augmentation=cfg.source_augmentations(),
        samples_per_epoch=cfg.samples_per_epoch or None,
        composite=cfg.composite(),
        seed=cfg.seed,
    )
    model, state = _model_and_state(cfg)

    for epoch in range(state.epoch, cfg.epochs):
        # Epoch start.
        started = time.time()
        lr = cosine_lr(epoch, cfg.epochs, cfg.learning_rate, cfg.min_learning_rate)
        model.optimizer.learning_rate.assign(lr)
        batches.set_epoch(epoch)

        # Steps.
        losses = []
        progress = tqdm(prefetched(batches), total=len(batches), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                        leave=False)  # fmt: skip
        for x, y in progress:
            loss = model.train_on_batch(x, y)
            losses.append(float(loss[0] if isinstance(loss, list | tuple) else loss))
            progress.set_postfix(loss=f"{np.mean(losses):.4f}")

        # Validation.
        scores = validate(model, val_sets, normalisation, cfg)

        # Epoch end: log, plot.
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": float(np.mean(losses)), **scores}
        row["seconds"] = round(time.time() - started, 1)
        state.history.append(row)
        _write_log(cfg.run_dir / "log.csv", state.history)
        _plot(cfg.run_dir / "curves.png", state.history)
        print(
            f"epoch {epoch + 1}: loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
            f"val_iou {row['val_iou']:.4f} ("
            + " ".join(f"{d.name} {row[f'val_{d.name}_iou']:.4f}" for d in val_sets)
            + f")  ({row['seconds']:.0f} s)",
            flush=True,
        )

        # Checkpoint: best by mean validation IoU over the sets, last with optimizer state.
        if row["val_iou"] > state.best_score:
            state.best_score, state.best_epoch = row["val_iou"], epoch + 1
            state.epochs_without_improvement = 0
            save_model(model, cfg.run_dir / "best.keras")
        else:
            state.epochs_without_improvement += 1
        state.epoch = epoch + 1
        save_model(model, cfg.run_dir / "last.keras")
        state.save(cfg.run_dir / "state.json")
        if state.epochs_without_improvement >= cfg.patience:
            print(f"early stop: no better validation IoU for {cfg.patience} epochs")
            break

    print(f"best mean validation IoU {state.best_score:.4f} at epoch {state.best_epoch}")
    return state
