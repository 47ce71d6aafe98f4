"""Export round trip on a tiny Keras U-Net: ONNX agrees with Keras, and the manifest is complete."""

import json

import keras
import numpy as np
import pytest

from carmask.inference import Segmenter
from carmask.manifest import ManifestError, load_manifest, sha256_of
from training.export import ExportError, export, verify
from training.model.unet import UNetConfig, build_unet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    keras.utils.set_random_seed(0)
    model = build_unet(UNetConfig(base_width=4, depth=2))
    model.save(tmp / "best.keras")
    (tmp / "config.json").write_text(json.dumps({"base_width": 4, "depth": 2, "batchnorm": True, "epochs": 1}))
    manifest = export(tmp / "best.keras", tmp / "models", "tiny", "0.1.0", image_size=32, metrics={"dice_model": 0.5})
    return tmp, model, manifest


def test_onnx_matches_keras_on_dynamic_shapes(exported):
    _, model, manifest = exported
    segmenter = Segmenter(manifest.path)
    x = np.random.default_rng(1).integers(0, 255, (3, 48, 64, 3), np.uint8)
    expected = keras.ops.convert_to_numpy(model(x.astype(np.float32) / 255.0))[..., 0]
    assert np.abs(segmenter.probabilities(x) - expected).max() <= 1e-4


def test_manifest_is_complete_and_its_hash_matches(exported):
    _, _, manifest = exported
    data = json.loads(manifest.path.read_text())
    for key in (
        "name",
        "version",
        "sha256",
        "created",
        "source_commit",
        "input",
        "output",
        "threshold",
        "training",
        "metrics",
        "speed",
        "architecture",
    ):
        assert key in data, key
    assert data["input"]["layout"] == "NHWC" and data["input"]["height"] == 32
    assert {"scale", "mean", "std", "name", "dtype"} <= set(data["input"])
    assert data["output"] == {
        "name": "mask",
        "activation": "sigmoid",
        "classes": [],
        "groups": {},
        "subject": {"mode": "main", "join": 0.0125, "keep_ratio": 0.5},  # served masks: the photo's car
        "refine": {"method": "guided", "radius": 2, "eps": 0.001},  # along the photo's edges
        "windows": {},  # no glass output (carmask-glass export adds one)
    }  # binary: no classes
    assert data["sha256"] == sha256_of(manifest.model_path)
    assert data["training"]["checkpoint"].endswith(".keras")  # which of the run's checkpoints this is
    assert len(data["training"]["stages"]) == 1 and "earlier_stage" not in data["training"]  # a flat lineage
    assert data["speed"]["median_ms_one_image"] > 0
    assert data["architecture"]["onnx_vs_keras_max_abs_diff"] <= 1e-4
    assert load_manifest(manifest.path).sha256 == data["sha256"]


def test_tampered_model_is_refused(exported, tmp_path):
    _, _, manifest = exported
    copy = tmp_path / "tiny.onnx"
    copy.write_bytes(manifest.model_path.read_bytes() + b"\0")
    (tmp_path / "tiny.json").write_text(manifest.path.read_text())
    with pytest.raises(ManifestError, match="sha256"):
        load_manifest(tmp_path / "tiny.json")


def test_verify_fails_loudly_when_models_differ(exported):
    _, _, manifest = exported
    other = build_unet(UNetConfig(base_width=4, depth=2))  # fresh random weights
    with pytest.raises(ExportError, match="differ"):
        verify(other, manifest.model_path, depth=2)


def test_int8_variant_has_its_own_manifest_and_stays_close(exported):
    from training.quantize import quantize_int8

    _, _, manifest = exported
    images = np.random.default_rng(2).integers(0, 255, (16, 32, 32, 3), np.uint8)
    quantized = quantize_int8(manifest.path, images)
    assert quantized.name == "tiny-int8" and load_manifest(quantized.path).sha256 == sha256_of(quantized.model_path)
    float_prob = Segmenter(manifest.path).probabilities(images[:4])
    int8_prob = Segmenter(quantized.path).probabilities(images[:4])
    assert np.abs(float_prob - int8_prob).mean() < 0.05


def test_pretrained_unet_exports_with_its_normalisation_in_the_manifest(tmp_path):
    """The manifest carries the ImageNet mean/std the encoder needs, and the served output matches Keras."""
    from training.model.encoders.mobilenet_v2 import MEAN, STD
    from training.model.mobile_unet import MobileUNetConfig

    keras.utils.set_random_seed(0)
    cfg = MobileUNetConfig()
    cfg.build().save(tmp_path / "best.keras")
    norm = cfg.normalisation
    config = {
        "model": cfg.to_dict(),
        "normalisation": {"scale": norm.scale, "mean": norm.mean, "std": norm.std},
        "image_size": 64,  # the size the run trained at: the manifest's input size unless export overrides it
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    manifest = export(tmp_path / "best.keras", tmp_path / "models", "mobile", "2.0.0")
    assert manifest.input.size == (64, 64)
    assert tuple(manifest.input.mean) == MEAN and tuple(manifest.input.std) == STD
    assert manifest.architecture["name"] == "mobile_unet" and manifest.architecture["depth"] == 5
    model = keras.models.load_model(tmp_path / "best.keras", compile=False)
    x = np.random.default_rng(2).integers(0, 255, (2, 64, 96, 3), np.uint8)
    expected = keras.ops.convert_to_numpy(model(norm.apply(x)))[..., 0]
    assert np.abs(Segmenter(manifest.path).probabilities(x) - expected).max() <= 1e-4
    # tf2onnx's Unsqueeze/Tile/Reshape chains of the nearest upsamplings are one Resize each in the file
    import onnx

    ops = [n.op_type for n in onnx.load(str(manifest.model_path)).graph.node]
    upsamplings = [layer for layer in model.layers if isinstance(layer, keras.layers.UpSampling2D)]
    assert len(upsamplings) == 5 and ops.count("Resize") == 5 and "Tile" not in ops
    assert manifest.architecture["onnx_nearest_upsampling"] == "Resize (5 layers)"


@pytest.mark.slow
def test_an_exported_model_comes_back_from_onnx_and_fine_tunes_with_batchnorm_fixed(tmp_path):
    """`carmask-weights from-onnx`: the shipped ONNX file's weights in the Keras architecture, same outputs."""
    from training.model.from_onnx import OnnxImportError, max_difference, model_from_onnx
    from training.model.mobile_unet import MobileUNetConfig

    keras.utils.set_random_seed(3)
    cfg = MobileUNetConfig(
        full_res_block="subpixel", upsampling="bilinear", decoder_widths=(32, 24, 16, 16, 16), stem_width=16
    )
    model = cfg.build()
    # BatchNorm statistics away from their defaults, so that a wrong fold shows
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    gamma * rng.uniform(0.5, 1.5, gamma.shape),
                    beta + rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 2.0, var.shape),
                ]
            )
    head = model.get_layer("mask_s2")
    head.set_weights([head.get_weights()[0], rng.normal(0, 0.5, 4).astype("float32")])
    model.save(tmp_path / "best.keras")
    norm = cfg.normalisation
    config = {
        "model": cfg.to_dict(),
        "image_size": 64,
        "normalisation": {"scale": norm.scale, "mean": norm.mean, "std": norm.std},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    rules = {"prefer_whole": 0.25, "min_confidence": 0.85, "same_height": None}  # the last one off
    manifest = export(tmp_path / "best.keras", tmp_path / "models", "tiny", "1.0.0", rules=rules, flip_tta=True)
    assert manifest.input.flip_tta  # served mirrored too: the graph is compared as it is, not as served
    assert manifest.output.subject == {"mode": "main", "join": 0.0125, "keep_ratio": 0.5, "prefer_whole": 0.25,
                                       "min_confidence": 0.85}  # fmt: skip

    back = model_from_onnx(manifest.path)
    assert max_difference(back, manifest.path, 64) < 1e-4
    assert max_difference(back, manifest.path, 96, seed=1) < 1e-4  # any side the network takes
    weights = {w.path: w for w in back.weights}
    assert any("mask_s2" in p for p in weights)  # the head's own bias came back too
    # a manifest naming another architecture than the graph holds is refused
    data = json.loads(manifest.path.read_text())
    data["architecture"]["decoder_widths"] = [64, 48, 32, 24, 32]
    manifest.path.write_text(json.dumps(data))
    with pytest.raises((OnnxImportError, ValueError)):
        model_from_onnx(manifest.path)


def test_a_nested_lineage_reads_as_a_flat_list_of_stages(tmp_path):
    from training.export import _earlier_stages, flatten_lineage

    nested = {
        "sources": {"carvana": {"weight": 1.0, "data": "..."}},
        "epochs_run": 3,
        "val_cars": ["a"],
        "earlier_stage": {"sources": {"carvana": {"weight": 0.5, "data": "..."}}, "epochs_run": 26, "loss": "bce"},
    }
    stages = flatten_lineage(nested)
    assert [s["epochs_run"] for s in stages] == [26, 3]  # oldest first
    assert stages[0] == {"sources": {"carvana": 0.5}, "epochs_run": 26, "loss": "bce"}
    assert "val_cars" not in stages[1]
    assert flatten_lineage({"stages": stages}) == stages
    # an imported model's lineage (carmask-weights from-onnx writes lineage.json) precedes a run started from it
    (tmp_path / "v26").mkdir()
    (tmp_path / "v26" / "lineage.json").write_text(json.dumps(stages))
    assert _earlier_stages(str(tmp_path / "v26" / "model.keras"), tmp_path / "run") == stages
    assert _earlier_stages(None, tmp_path / "run") == []
