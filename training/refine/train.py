"""Training the edge refiner, top to bottom: the coarse model's answers, tiles along its outline, the fit.

1. The shipped car model's answers for every training photo are cached (training.refine.coarse): the refiner
   learns to correct exactly what it will be given. Carvana's cars split as the car model's manifest says
   (its validation cars never train the refiner); DAVIS holds out the same sequence; DSMLR's training photos.
2. Tiles along the coarse outline at each photo's full resolution (training.refine.tiles), labelled inside
   the band only.
3. The network (training.refine.nets) learns sigmoid(coarse logit + correction) against the labels: binary
   cross-entropy over the band, random flips and 90-degree turns. Every epoch saves `last.keras` and the
   state; the best validation loss (the validation cars' tiles) is `best.keras`. A rerun resumes.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from carmask.inference import Segmenter
from carmask.refine.learned import PRIOR_LOGIT, tile_inputs
from training.data.reader import read_carvana
from training.data.sources.davis import read_davis
from training.data.sources.dsmlr import read_dsmlr
from training.data.split import split_by_car
from training.losses import bce
from training.refine.coarse import cache_coarse, cache_folder
from training.refine.config import RefineConfig
from training.refine.nets import build_refiner, with_prior
from training.refine.tiles import cut_tiles


def sequence(frame) -> str:
    return frame.group.rsplit("/", 1)[-1]  # groups are "davis/<sequence>"


def photo_sets(cfg: RefineConfig, val_cars: set[str]) -> dict[str, tuple[list, list]]:
    """(train, validation) photos of each source in `cfg.sources`, split by car / sequence / photo as the car
    model was (its manifest's val_cars; a model without them: a fifth of the cars by `cfg.seed`)."""

    def carvana():
        photos = read_carvana(cfg.carvana_dir)
        if not val_cars:
            return split_by_car(photos, 0.2, cfg.seed)
        return [s for s in photos if s.car not in val_cars], [s for s in photos if s.car in val_cars]

    def davis():
        held, frames = set(cfg.davis_val_sequences.split(",")), read_davis(cfg.davis_dir)
        return [f for f in frames if sequence(f) not in held], [f for f in frames if sequence(f) in held]

    def dsmlr():
        return read_dsmlr(cfg.dsmlr_dir, "trainingset"), read_dsmlr(cfg.dsmlr_dir, "testset")

    readers = {"carvana": carvana, "davis": davis, "dsmlr": dsmlr}
    names = cfg.sources.split(",")
    unknown = sorted(set(names) - set(readers))
    if unknown:
        raise ValueError(f"unknown refiner sources {unknown}; known: {sorted(readers)}")
    return {name: readers[name]() for name in names}


def tiles_of(cfg: RefineConfig, segmenter: Segmenter, sets: dict, which: int) -> tuple[np.ndarray, np.ndarray]:
    """Every source's tiles of one side of the split (0 train, 1 validation), stacked."""
    coarse_root = cache_folder(cfg.cache_dir / "coarse", segmenter)
    tile_root = coarse_root.parent.parent / "tiles" / f"{coarse_root.name}-r{cfg.radius}-c{cfg.crop}-n{cfg.per_photo}"
    xs, ys = [], []
    for source, split in sets.items():
        photos = split[which]
        cache_coarse(segmenter, photos, coarse_root / source)
        x, y, _ = cut_tiles(photos, coarse_root / source, tile_root / source, cfg.radius, cfg.crop,
                            cfg.per_photo, seed=cfg.seed)  # fmt: skip
        xs.append(x)
        ys.append(y)
        print(f"{source} {'train' if which == 0 else 'validation'}: {len(photos)} photos, {len(x)} tiles")
    return np.concatenate(xs), np.concatenate(ys)


class Tiles(keras.utils.PyDataset):
    """Batches of ((inputs, coarse logit), labels), shuffled each epoch, flipped and turned at random."""

    def __init__(self, x, y, batch_size: int, count: int | None, seed: int, augment: bool, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size, self.augment = x, y, batch_size, augment
        self.count = min(count or len(x), len(x))
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self) -> int:  # training drops a last short batch; validation keeps it
        return self.count // self.batch_size if self.augment else -(-self.count // self.batch_size)

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.x))[: self.count] if self.augment else np.arange(self.count)

    def __getitem__(self, index: int):
        pick = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        x, y = self.x[pick], self.y[pick]
        if self.augment:
            turns, flip = self.rng.integers(0, 4), self.rng.integers(0, 2)
            x, y = np.rot90(x, turns, axes=(1, 2)), np.rot90(y, turns, axes=(1, 2))
            if flip:
                x, y = x[:, :, ::-1], y[:, :, ::-1]
        return (tile_inputs(x), PRIOR_LOGIT[x[..., 3:]]), y[..., None]


def train(cfg: RefineConfig) -> Path:
    """Fit the refiner; returns the run folder (best.keras, last.keras, config.json, history.json)."""
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    segmenter = Segmenter(cfg.manifest, providers=["CPUExecutionProvider"])
    val_cars = set(segmenter.manifest.training.get("val_cars", []))
    sets = photo_sets(cfg, val_cars)
    x_train, y_train = tiles_of(cfg, segmenter, sets, 0)
    x_val, y_val = tiles_of(cfg, segmenter, sets, 1)
    (cfg.run_dir / "config.json").write_text(json.dumps(
        {**{k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
         "coarse_model": f"{segmenter.manifest.name} {segmenter.manifest.version}",
         "coarse_sha256": segmenter.manifest.sha256, "train_tiles": len(x_train), "val_tiles": len(x_val)},
        indent=1))  # fmt: skip

    state_file, history_file = cfg.run_dir / "state.json", cfg.run_dir / "history.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {"epoch": 0, "best": None}
    history = json.loads(history_file.read_text()) if history_file.is_file() else []
    network = (keras.models.load_model(cfg.run_dir / "last.keras", compile=False) if state["epoch"]
               else build_refiner(cfg.design, cfg.width))  # fmt: skip
    model = with_prior(network)
    steps = cfg.epochs * (min(cfg.tiles_per_epoch, len(x_train)) // cfg.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=bce)
    model.optimizer.iterations.assign(state["epoch"] * (steps // cfg.epochs))  # resume the schedule where it was
    train_data = Tiles(x_train, y_train, cfg.batch_size, cfg.tiles_per_epoch, cfg.seed + state["epoch"], True)
    val_data = Tiles(x_val, y_val, 64, None, 0, False)

    for epoch in range(state["epoch"], cfg.epochs):
        start = time.time()
        fit = model.fit(train_data, epochs=1, verbose=2)
        val_loss = float(model.evaluate(val_data, verbose=0))
        history.append({"epoch": epoch + 1, "loss": fit.history["loss"][-1], "val_loss": val_loss,
                        "minutes": round((time.time() - start) / 60, 2)})  # fmt: skip
        print(f"epoch {epoch + 1}/{cfg.epochs}: loss {history[-1]['loss']:.4f} val {val_loss:.4f}", flush=True)
        network.save(cfg.run_dir / "last.keras")
        if state["best"] is None or val_loss < state["best"]:
            state["best"] = val_loss
            network.save(cfg.run_dir / "best.keras")
        state["epoch"] = epoch + 1
        history_file.write_text(json.dumps(history, indent=1))
        state_file.write_text(json.dumps(state))
    return cfg.run_dir
