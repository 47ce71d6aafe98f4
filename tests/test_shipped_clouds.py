"""The shipped cloud models (models/carmask-clouds-4band, the default, and the 8-band carmask-clouds): their
manifests, sense on patches the test builds (Landsat-8 reflectance, Sentinel-2 and Landsat digital numbers),
the service answering them by name and alias beside the car model, and (with ../shared) their figures on the
test patches and the 4-band model's on other sensors' chips (when fetched)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from fastapi.testclient import TestClient
from PIL import Image

from carmask.clouds.segmenter import PatchSegmenter
from carmask.manifest import load_manifest
from service.app import create_app
from service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
CLOUDS = ROOT / "models" / "carmask-clouds.json"
CLOUDS4 = ROOT / "models" / "carmask-clouds-4band.json"
CHIPS = ROOT.parent / "data" / "ukis"  # ukis-csmask's tests/testfiles/*.npz, fetched by hand (never committed)
CLOUD_DATA = ROOT.parent / "shared" / "data" / "clouds" / "l8-biome"
BANDS = ["blue", "green", "red", "nir", "swir1", "swir2", "cirrus", "tir"]

pytestmark = pytest.mark.skipif(not CLOUDS.is_file(), reason="no shipped cloud model yet")


def scene(cloud: bool) -> np.ndarray:
    """Forest (dark visible, bright NIR, warm) or thick cloud (bright everywhere, cold) in the 8 bands."""
    forest = [0.10, 0.08, 0.06, 0.30, 0.15, 0.06, 0.002, 295.0]
    cloudy = [0.55, 0.53, 0.54, 0.60, 0.45, 0.32, 0.02, 255.0]
    return np.broadcast_to(np.array(cloudy if cloud else forest, np.float32), (128, 128, 8)).copy()


def test_manifest_says_task_bands_classes_and_groups():
    m = load_manifest(CLOUDS)
    assert m.task == "multiclass-segmentation" and m.output.activation == "softmax"
    assert m.input.band_names == BANDS and len(m.input.mean) == len(m.input.std) == 8
    assert [b["unit"] for b in m.input.bands][-1] == "kelvin" and m.input.nodata == 0.0
    assert m.output.class_names == ["clear", "thin_cloud", "thick_cloud", "shadow"]
    assert m.output.groups["cloud_cover"] == ["thin_cloud", "thick_cloud"]
    assert all(len(c["colour"]) == 3 for c in m.output.classes)
    assert m.metrics["test"]["cloud_iou"] >= 0.6 and m.training["train_patches"]  # a floor, not the goal


def test_it_tells_cloud_from_forest_and_leaves_fill_out():
    seg = PatchSegmenter(CLOUDS, providers=["CPUExecutionProvider"], threads=2)
    patch = scene(cloud=False)
    patch[:, 64:] = scene(cloud=True)[:, 64:]
    patch[:16] = 0.0  # fill rows
    result = seg.classify(patch)
    assert (result.class_map[:16] == 255).all()
    assert np.isin(result.class_map[16:, 80:], [1, 2]).mean() > 0.9  # cloud
    assert (result.class_map[16:, :48] == 0).mean() > 0.9  # clear forest


def test_the_service_serves_it_by_name_beside_the_car_model():
    settings = ServiceSettings(models=[ROOT / "models"], access_log=False)
    buf = io.BytesIO()
    tifffile.imwrite(buf, scene(cloud=True), planarconfig="contig")
    with TestClient(create_app(settings)) as client:
        body = client.post("/segment", params={"model": "clouds-8band"}, files={"file": ("c.tif", buf.getvalue())})
        assert body.status_code == 200 and body.json()["cloud_cover_pct"] > 90
        assert body.json()["model"] == "carmask-clouds"  # by its alias
        four = client.post("/segment", params={"model": "carmask-clouds"},
                           files={"file": ("c.npy", _npy(scene(cloud=True)[..., :4]))})  # fmt: skip
        assert four.status_code == 422 and "expected 8" in four.json()["detail"]


@pytest.mark.skipif(not CLOUDS4.is_file(), reason="no shipped 4-band cloud model yet")
def test_the_four_band_model_is_the_default_and_reads_any_sensor():
    m = load_manifest(CLOUDS4)
    assert m.input.band_names == BANDS[:4] and "clouds" in m.aliases and "sentinel2-l2a" in m.input.sensors
    assert "clouds" not in load_manifest(CLOUDS).aliases  # the 8-band model answers by name (and clouds-8band)
    reflectance = scene(cloud=False)[..., :4]
    reflectance[:, 64:] = scene(cloud=True)[:, 64:, :4]
    s2 = np.round(reflectance * 10000 + 1000).astype(np.uint16)  # L2A digital numbers
    landsat = np.round((reflectance + 0.2) / 2.75e-5).astype(np.uint16)  # Collection 2 Level-2
    settings = ServiceSettings(models=[ROOT / "models"], access_log=False)
    with TestClient(create_app(settings)) as client:
        for data, sensor in ((s2, "sentinel2-l2a"), (landsat, "landsat7"), (reflectance, None)):
            buf = io.BytesIO()
            tifffile.imwrite(buf, data, planarconfig="contig")
            params = {"model": "clouds", "format": "png", **({"sensor": sensor} if sensor else {})}
            answer = client.post("/segment", params=params, files={"file": ("s.tif", buf.getvalue())})
            assert answer.status_code == 200, answer.text
            classes = np.asarray(Image.open(io.BytesIO(answer.content)))
            assert np.isin(classes[:, 80:], [1, 2]).mean() > 0.9 and (classes[:, :48] == 0).mean() > 0.9


@pytest.mark.real_data
@pytest.mark.skipif(not (CLOUDS4.is_file() and CHIPS.is_dir()), reason="needs the ukis-csmask chips in ../data/ukis")
def test_the_four_band_model_on_other_sensors_chips_as_recorded():
    from training.clouds.chips import CHIP_BANDS, read_chips
    from training.clouds.evaluate import score

    seg = PatchSegmenter(CLOUDS4, providers=["CPUExecutionProvider"], threads=2)
    chips = read_chips(CHIPS)
    maps = [seg.classify(seg.bands_of(c.image, list(CHIP_BANDS))).class_map for c in chips]
    names = [c.name for c in chips]
    report = score(np.stack(maps), np.stack([c.labels for c in chips]), names, names)
    recorded = load_manifest(CLOUDS4).metrics["cross_sensor_chips"]
    assert report["cloud_iou"] == pytest.approx(recorded["cloud_iou"], abs=1e-3)
    assert report["cloud_cover_mae_pct"] == pytest.approx(recorded["cloud_cover_mae_pct"], abs=0.05)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


@pytest.mark.real_data
@pytest.mark.skipif(not CLOUD_DATA.is_dir(), reason="needs ../shared/data/clouds")
def test_figures_on_the_held_out_test_patches():
    from training.clouds.data import read_l8_biome
    from training.clouds.train import evaluate_predictor

    seg = PatchSegmenter(CLOUDS, providers=["CPUExecutionProvider"], threads=2)
    report, _ = evaluate_predictor(seg, read_l8_biome(CLOUD_DATA, ("test",)), tuple(BANDS))
    recorded = load_manifest(CLOUDS).metrics["test"]
    assert report["cloud_iou"] == pytest.approx(recorded["cloud_iou"], abs=1e-3)  # the manifest tells the truth
    assert report["cloud_cover_mae_pct"] == pytest.approx(recorded["cloud_cover_mae_pct"], abs=0.05)
