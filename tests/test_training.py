"""A few real training steps on a generated Carvana folder: loss falls, resume continues, seeds repeat."""

import csv
import json

import numpy as np
import pytest

from carmask.preprocess import Normalisation
from tests.fixtures import make_carvana
from training.config import TrainConfig
from training.data.augment import PRESETS
from training.data.dataset import MixedBatches, SourceArrays
from training.train import run_training

pytestmark = pytest.mark.slow


def config(tmp_path, data, **overrides) -> TrainConfig:
    values = dict(
        data_dir=data,
        run_dir=tmp_path / "run",
        cache_dir=tmp_path / "cache",
        image_size=32,
        base_width=4,
        depth=2,
        batch_size=4,
        learning_rate=1e-2,
        augment="none",
        val_fraction=0.25,
        workers=1,
        architecture="unet",
        sources="carvana:1",
        samples_per_epoch=0,
        cache_size=32,
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_carvana(tmp_path_factory.mktemp("carvana"), cars=4, views=4, size=(64, 48))


def test_training_lowers_the_loss_and_writes_its_artefacts(tmp_path, data):
    state = run_training(config(tmp_path, data, epochs=8, patience=100))
    run = tmp_path / "run"
    losses = [h["train_loss"] for h in state.history]
    assert losses[-1] < 0.7 * losses[0]
    for name in ("best.keras", "last.keras", "state.json", "split.json", "log.csv", "curves.png", "config.json"):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader((run / "log.csv").read_text().splitlines()))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 9))
    split = json.loads((run / "split.json").read_text())
    assert set(split["train_cars"]).isdisjoint(split["val_cars"])


def test_resume_continues_from_the_saved_epoch(tmp_path, data):
    run_training(config(tmp_path, data, epochs=2))
    state = run_training(config(tmp_path, data, epochs=4, resume=True))
    assert [h["epoch"] for h in state.history] == [1, 2, 3, 4]
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").read_text().splitlines()))
    assert len(rows) == 4


def test_early_stopping_stops(tmp_path, data):
    state = run_training(config(tmp_path, data, epochs=30, patience=1, learning_rate=0.0, min_learning_rate=0.0))
    assert state.epoch < 30


def test_same_seed_same_batches():
    images = np.random.default_rng(0).integers(0, 255, (10, 16, 16, 3), np.uint8)
    masks = (images[..., 0] > 128).astype(np.uint8)
    source = SourceArrays("carvana", images, masks)
    make = lambda seed: MixedBatches([source], 4, Normalisation(), PRESETS["original"], seed=seed)  # noqa: E731
    a, b, c = make(1), make(1), make(2)
    for batches in (a, b, c):
        batches.set_epoch(3)
    assert np.array_equal(a[0][0], b[0][0]) and np.array_equal(a[1][1], b[1][1])
    assert not np.array_equal(a[0][0], c[0][0])


def test_a_second_stage_starts_from_the_first_stages_weights(tmp_path, data):
    import keras

    first = config(tmp_path, data, epochs=2, run_dir=tmp_path / "stage1")
    run_training(first)
    best = keras.models.load_model(tmp_path / "stage1" / "best.keras", compile=False)
    second = config(tmp_path, data, epochs=1, run_dir=tmp_path / "stage2", init_from=tmp_path / "stage1" / "best.keras")
    second.learning_rate = second.min_learning_rate = 0.0  # no step may move the weights
    run_training(second)
    after = keras.models.load_model(tmp_path / "stage2" / "best.keras", compile=False)
    for a, b in zip(best.get_weights(), after.get_weights(), strict=True):
        if a.ndim > 1:  # kernels (BatchNorm statistics still move in training mode)
            assert np.allclose(a, b)
