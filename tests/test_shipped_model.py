"""The shipped models: v2 (the default) and v1 (by name); their manifests hold, they segment real Carvana
cars well, v2 segments ordinary photos well, and the service serves both by name."""

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from carmask.inference import Segmenter
from carmask.manifest import load_manifest
from carmask.metrics import per_image_scores
from service.app import create_app
from service.settings import ServiceSettings
from tests.conftest import REAL_DATA, SHIPPED_MODEL, V1_MODEL, V2_MODEL, needs_real_data
from tests.fixtures import encode, red_box_photo

DSMLR = REAL_DATA.parent / "cars-outside" / "dsmlr"

pytestmark = pytest.mark.skipif(not SHIPPED_MODEL.is_file(), reason="no shipped model yet")


def test_manifests_match_their_files_and_are_small_enough():
    v1 = load_manifest(V1_MODEL)
    assert v1.model_path.stat().st_size <= 50 * 1024 * 1024 and v1.metrics["dice_model"] >= 0.98
    v2 = load_manifest(V2_MODEL)
    assert v2.model_path.stat().st_size <= 50 * 1024 * 1024
    assert v2.input.size == (320, 320) and v2.output.activation == "sigmoid"
    assert v2.input.mean == [0.485, 0.456, 0.406]  # ImageNet normalisation of the pretrained encoder
    assert v2.metrics["carvana"]["dice_original"] >= 0.98
    assert v2.metrics["dsmlr"]["iou_original"] >= 0.9  # ordinary photos, held out
    assert v2.training["val_cars"] and v2.task == "binary-segmentation"


def test_the_default_upsamples_with_resize_not_tf2onnx_repeats():
    """The shipped graph went through training.onnx_graph: no Tile chains left (they cost ~9 % of the call)."""
    import onnx

    v2 = load_manifest(V2_MODEL)
    ops = [n.op_type for n in onnx.load(str(v2.model_path)).graph.node]
    assert ops.count("Resize") == 4 and "Tile" not in ops
    assert v2.architecture["onnx_nearest_upsampling"] == "Resize (4 layers)"


def test_service_starts_on_the_shipped_model_by_default():
    with TestClient(create_app(ServiceSettings())) as client:
        assert client.get("/ready").json()["model"] == load_manifest(SHIPPED_MODEL).name
        r = client.post("/segment", files={"file": ("x.jpg", encode(red_box_photo(640, 427)[0]))})
        assert r.status_code == 200 and r.headers["x-image-width"] == "640"


@needs_real_data
@pytest.mark.parametrize("model", [V1_MODEL, V2_MODEL], ids=["v1", "v2"])
def test_segments_a_validation_car_at_full_resolution(model):
    from PIL import Image

    manifest = json.loads(model.read_text())
    car = manifest["training"]["val_cars"][0]  # never seen in training (both share the split)
    photos = sorted((REAL_DATA / "train").glob(f"{car}_*.jpg"))[:4]
    masks = Segmenter(model, threads=2).predict_masks(photos)
    for photo, mask in zip(photos, masks, strict=True):
        truth = np.asarray(Image.open(REAL_DATA / "train_masks" / f"{photo.stem}_mask.gif").convert("L")) > 0
        assert mask.shape == truth.shape == (1280, 1918)
        assert per_image_scores(mask[None], truth[None])["dice"][0] > 0.97


def test_v1_is_served_by_name_beside_the_default():
    settings = ServiceSettings(models=[SHIPPED_MODEL.parent])
    with TestClient(create_app(settings)) as client:
        listed = client.get("/models").json()
        assert listed["default"] == load_manifest(SHIPPED_MODEL).name == "carmask-v2"
        assert {"carmask-unet", "carmask-unet-int8"} <= {m["name"] for m in listed["models"]}
        data = encode(red_box_photo(320, 240)[0])
        r = client.post("/segment", params={"model": "carmask-unet"}, files={"file": ("x.jpg", data)})
        assert r.status_code == 200 and r.headers["x-model"] == "carmask-unet"
        r = client.post("/segment", files={"file": ("x.jpg", data)})
        assert r.status_code == 200 and r.headers["x-model"] == "carmask-v2"


@pytest.mark.skipif(not (DSMLR / "testset").is_dir(), reason="needs ../shared/data/cars-outside/dsmlr")
def test_masks_the_car_in_ordinary_photos():
    from training.data.sources import IGNORE
    from training.data.sources.dsmlr import read_dsmlr

    photos = read_dsmlr(DSMLR, "testset")[:8]
    masks = Segmenter(V2_MODEL, threads=2).predict_masks([p.image_path for p in photos])
    ious = []
    for photo, mask in zip(photos, masks, strict=True):
        label = photo.load_label()
        ious.append(per_image_scores(mask[None], (label == 1)[None], (label != IGNORE)[None])["iou"][0])
    assert np.mean(ious) > 0.9, ious


STUDIO_MODEL = V2_MODEL.with_name("carmask-v2-studio.json")


def test_the_studio_model_is_the_default_network_with_its_outline_refined_at_the_photo_size():
    studio = load_manifest(STUDIO_MODEL)  # its refiner's graph checked by hash at load
    default = load_manifest(V2_MODEL)
    assert studio.sha256 == default.sha256 and studio.aliases == ["studio"]
    stage = studio.output.refinement.photo
    assert stage is not None and stage.radius == 8 and "refiner" in studio.training
    image, truth = red_box_photo(960, 640)
    data = encode(image, "PNG")
    seg, plain = Segmenter(STUDIO_MODEL), Segmenter(V2_MODEL)
    fast, best = seg.predict_masks([data], quality="fast")[0], seg.predict_masks([data])[0]
    assert best.shape == truth.shape and np.array_equal(fast, plain.predict_masks([data])[0])  # fast: the default's
    from carmask.preprocess import upsample_probabilities
    from carmask.refine.band import band_mask

    band = band_mask(upsample_probabilities(fast.astype(np.float32), fast.shape[::-1]), stage.radius)
    assert np.array_equal(best[~band], fast[~band])  # only the band along the outline may change
    with TestClient(create_app(ServiceSettings(model=V2_MODEL, models=[STUDIO_MODEL]))) as client:
        listed = {m["name"]: m for m in client.get("/models").json()["models"]}
        assert listed["carmask-v2-studio"]["refines"] and not listed["carmask-v2"]["refines"]
        r = client.post("/segment?model=studio", files={"file": ("car.png", data, "image/png")})
        assert r.status_code == 200 and r.headers["X-Model"] == "carmask-v2-studio"
