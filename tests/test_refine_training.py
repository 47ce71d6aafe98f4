"""Training and shipping the edge refiner on generated photos: tiles along the coarse outline, a resumable fit,
the export beside the car model (its graph untouched), and the shipped stage serving."""

from __future__ import annotations

import json

import numpy as np
import pytest

from carmask.inference import Segmenter
from carmask.manifest import load_manifest, sha256_of
from carmask.preprocess import upsample_probabilities
from carmask.refine.band import band_mask
from carmask.synthetic import make_carvana
from tests.fixtures import make_red_model
from training.data.reader import read_carvana
from training.data.sources.base import IGNORE
from training.refine.coarse import cache_coarse, cache_folder, load_coarse
from training.refine.config import RefineConfig
from training.refine.export import export_refiner
from training.refine.tiles import cut_tiles
from training.refine.train import train

CPU = ["CPUExecutionProvider"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("refine")
    carvana = make_carvana(root / "carvana", cars=5, views=2, size=(160, 120))
    model = make_red_model(root / "models", size=64, aspect_range=[1.0, 1.8])
    return root, carvana, model


def test_tiles_lie_along_the_coarse_outline_and_are_labelled_inside_the_band_only(setup):
    root, carvana, model = setup
    segmenter = Segmenter(model, providers=CPU)
    samples = read_carvana(carvana)[:3]
    folder = cache_coarse(segmenter, samples, cache_folder(root / "coarse", segmenter) / "carvana")
    mirrored = Segmenter(model, providers=CPU, flip_tta=True)  # other answers from the same file: apart
    assert cache_folder(root / "coarse", mirrored) != cache_folder(root / "coarse", segmenter)
    mtimes = [p.stat().st_mtime_ns for p in sorted(folder.iterdir())]
    cache_coarse(segmenter, samples, folder)  # cached: nothing is recomputed
    assert [p.stat().st_mtime_ns for p in sorted(folder.iterdir())] == mtimes
    x, y, groups = cut_tiles(samples, folder, root / "tiles", radius=4, size=32, per_photo=6, workers=1)
    assert x.shape == (18, 32, 32, 4) and y.shape == (18, 32, 32) and len(set(groups)) == 2
    centre = y[:, 16, 16]
    assert (centre != IGNORE).all()  # every tile is centred on a band pixel
    labelled = y != IGNORE
    assert labelled.any() and (~labelled).any() and set(np.unique(y[labelled])) <= {0, 1}
    truth = samples[0].load_label()
    coarse = upsample_probabilities(load_coarse(folder, samples[0]), truth.shape[::-1])
    assert coarse.shape == truth.shape


def test_the_refiner_trains_resumes_and_ships_beside_the_model(setup):
    root, carvana, model = setup
    run = root / "run"
    config = RefineConfig(manifest=model, carvana_dir=carvana, sources="carvana", cache_dir=root / "cache",
                          run_dir=run, radius=4, crop=32, per_photo=8, epochs=2, tiles_per_epoch=64,
                          batch_size=16, learning_rate=5e-3)  # fmt: skip
    train(config)
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and (run / "best.keras").is_file()
    config.epochs = 3
    train(config)  # resumes: one more epoch, not three
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert json.loads((run / "state.json").read_text())["epoch"] == 3

    car_onnx_sha = sha256_of(load_manifest(model).model_path)
    shipped = export_refiner(run, model, "0.0.2", model.parent, tile=16, margin=4, max_side=1000)
    assert shipped.version == "0.0.2" and shipped.sha256 == car_onnx_sha  # the car graph is untouched
    stages = shipped.output.refine
    assert [s["method"] for s in stages] == ["none", "learned"] and stages[1]["radius"] == 4
    assert shipped.training["refiner"]["data"].keys() == {"carvana"}
    segmenter = Segmenter(shipped.path, providers=CPU)
    photo = read_carvana(carvana)[0]
    best = segmenter.predict_masks([photo.image_path])[0]
    fast = segmenter.predict_masks([photo.image_path], quality="fast")[0]
    truth = photo.load_label()
    coarse_band = band_mask(upsample_probabilities(np.where(fast == 1, 1.0, 0.0), fast.shape[::-1]), 4)
    assert best.shape == truth.shape and np.array_equal(best[~coarse_band], fast[~coarse_band])


def test_cached_files_are_unique_per_photo_when_names_repeat_across_folders():
    from types import SimpleNamespace

    from training.refine.coarse import sample_key

    frames = [SimpleNamespace(name="car-shadow/00000.jpg"), SimpleNamespace(name="drift-straight/00000.jpg")]
    assert len({sample_key(f) for f in frames}) == 2 and sample_key(SimpleNamespace(name="x_01.jpg")) == "x_01"
