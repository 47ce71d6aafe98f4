"""A few real training steps on a generated Carvana folder: loss falls, resume continues, seeds repeat."""

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from carmask.preprocess import Normalisation
from tests.fixtures import make_carvana
from training.config import TrainConfig
from training.data.augment import PRESETS
from training.data.dataset import MixedBatches, SourceArrays, prefetched
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
    ahead = list(prefetched(a))  # made on a second thread, one batch ahead: the same batches, in order
    assert len(ahead) == len(a) == 3
    for index, (x, y) in enumerate(ahead):
        assert np.array_equal(x, a[index][0]) and np.array_equal(y, a[index][1])


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


def test_a_warm_up_stage_trains_only_the_new_head(tmp_path, data):
    """freeze_copied: what init_from supplied (kernels and BatchNorm statistics) stays; the new layers learn."""
    import keras

    mobile = dict(architecture="mobile_unet", encoder_weights=None, decoder_widths="16,16,16,8,8", stem_width=4)
    run_training(config(tmp_path, data, epochs=1, run_dir=tmp_path / "stage1", full_res_block="conv", **mobile))
    earlier = keras.models.load_model(tmp_path / "stage1" / "best.keras", compile=False)
    second = config(
        tmp_path,
        data,
        epochs=1,
        run_dir=tmp_path / "stage2",
        init_from=tmp_path / "stage1" / "best.keras",
        freeze_copied=True,
        full_res_block="subpixel",
        **mobile,
    )
    run_training(second)
    after = keras.models.load_model(tmp_path / "stage2" / "last.keras", compile=False)
    new = {"stem_s2_conv", "dec4_a_conv", "dec4_b_conv", "mask_s2"}
    fresh = new | {"stem_s2_bn", "dec4_a_bn", "dec4_b_bn"}
    kept = [layer.name for layer in after.layers if layer.weights and layer.name not in fresh]
    assert "features_0_0" in kept and "features_0_1" in kept and "dec3_pw" in kept
    for name in kept:
        for a, b in zip(earlier.get_layer(name).get_weights(), after.get_layer(name).get_weights(), strict=True):
            assert np.array_equal(a, b), name
    with pytest.raises(ValueError, match="nothing would train"):  # the same model again: every layer copied
        run_training(replace(second, run_dir=tmp_path / "stage3", init_from=tmp_path / "stage2" / "last.keras"))
    keras.utils.set_random_seed(second.seed)  # the new layers as run_training built them, before any step
    initial = second.model().build()
    for name in new:
        assert not np.array_equal(initial.get_layer(name).get_weights()[0], after.get_layer(name).get_weights()[0])


def test_freezing_needs_an_earlier_stage(tmp_path, data):
    with pytest.raises(ValueError, match="freeze_copied needs init_from"):
        run_training(config(tmp_path, data, epochs=1, freeze_copied=True))


def test_a_decoder_only_stage_keeps_the_encoder(tmp_path, data):
    """freeze_encoder: every `features_*` layer (kernels and BatchNorm statistics) stays; the decoder learns."""
    import keras

    mobile = dict(architecture="mobile_unet", encoder_weights=None, decoder_widths="16,16,16,8,8", stem_width=4)
    run_training(config(tmp_path, data, epochs=1, run_dir=tmp_path / "stage1", **mobile))
    earlier = keras.models.load_model(tmp_path / "stage1" / "best.keras", compile=False)
    second = config(
        tmp_path,
        data,
        epochs=1,
        run_dir=tmp_path / "stage2",
        init_from=tmp_path / "stage1" / "best.keras",
        freeze_encoder=True,
        **mobile,
    )
    run_training(second)
    after = keras.models.load_model(tmp_path / "stage2" / "last.keras", compile=False)
    encoder = [layer.name for layer in after.layers if layer.weights and layer.name.startswith("features_")]
    decoder = [layer.name for layer in after.layers if layer.weights and not layer.name.startswith("features_")]
    assert "features_0_1" in encoder and "mask" in decoder
    for name in encoder:
        for a, b in zip(earlier.get_layer(name).get_weights(), after.get_layer(name).get_weights(), strict=True):
            assert np.array_equal(a, b), name
    moved = [
        name
        for name in decoder
        if not np.array_equal(earlier.get_layer(name).get_weights()[0], after.get_layer(name).get_weights()[0])
    ]
    assert "mask" in moved and len(moved) >= len(decoder) // 2


def test_the_classic_unet_has_no_encoder_to_freeze(tmp_path, data):
    with pytest.raises(ValueError, match="no pretrained encoder"):
        run_training(config(tmp_path, data, epochs=1, freeze_encoder=True))
