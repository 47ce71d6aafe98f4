"""The learned refinement at the photo's resolution: the band it may change, what it does inside it, every
consumer asking for it (quality=fast skipping it), and the manifest refusing a malformed stage at load."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from carmask.inference import Segmenter
from carmask.manifest import ManifestError, load_manifest
from carmask.refine import LearnedRefine, Refinement
from carmask.refine.band import band_mask, crop
from carmask.refine.learned import PRIOR_LOGIT, EdgeRefiner, grid_tiles
from carmask.session import open_session
from service.app import create_app
from service.settings import ServiceSettings
from tests.fixtures import add_learned_refiner, make_red_model

CPU = ["CPUExecutionProvider"]


def red_car(size=(400, 240), box=(60, 200, 50, 340)) -> tuple[np.ndarray, np.ndarray]:
    """A grey photo with a sharp red car box: (RGB, true 0/1 mask)."""
    w, h = size
    rgb = np.full((h, w, 3), 128, np.uint8)
    truth = np.zeros((h, w), np.uint8)
    top, bottom, left, right = box
    truth[top:bottom, left:right] = 1
    rgb[truth == 1] = (230, 20, 20)
    return rgb, truth


def soft_coarse(truth: np.ndarray, shift: int = 3, blur: float = 3.0) -> np.ndarray:
    """A coarse answer as an upsampled low-resolution one looks: shifted and soft, uint8."""
    moved = np.roll(truth, (shift, -shift), axis=(0, 1)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(moved, (0, 0), blur) * 255 + 0.5, 0, 255).astype(np.uint8)


@pytest.fixture
def refiner_manifest(tmp_path):
    return add_learned_refiner(make_red_model(tmp_path, size=64, aspect_range=[1.0, 1.8]))


def open_refiner(manifest_path) -> EdgeRefiner:
    manifest = load_manifest(manifest_path)
    spec = manifest.output.refinement.photo
    return EdgeRefiner(spec, open_session(manifest.beside(spec.file), CPU))


def test_the_band_is_the_pixels_within_radius_of_the_outline():
    prob = np.zeros((40, 50), np.uint8)
    prob[10:30, 12:40] = 255
    band = band_mask(prob, 3)
    ys, xs = np.mgrid[:40, :50]
    inside = (ys >= 10) & (ys < 30) & (xs >= 12) & (xs < 40)
    # Chebyshev distance to the nearest pixel of the other side, for every pixel
    other = [(y, x) for y in range(40) for x in range(50) if inside[y, x] != inside[20, 25]]
    outside = np.argwhere(~inside)
    expected = np.zeros_like(band)
    for y, x in np.argwhere(inside):
        expected[y, x] = (np.maximum(abs(outside[:, 0] - y), abs(outside[:, 1] - x)) <= 3).any()
    for y, x in outside:
        expected[y, x] = max(abs(y - min(max(y, 10), 29)), abs(x - min(max(x, 12), 39))) <= 3
    assert other and np.array_equal(band, expected)
    assert not band_mask(np.zeros((8, 8), np.uint8), 2).any()  # no outline, no band (the frame is none)


def test_crop_repeats_the_edge_outside_the_photo():
    a = np.arange(20, dtype=np.uint8).reshape(4, 5)
    window = crop(a, -2, 3, 4)
    assert window.shape == (4, 4)
    assert np.array_equal(window[2:, :2], a[:2, 3:5]) and np.array_equal(window[0], window[2])
    assert np.array_equal(window[2:, 2:], np.repeat(a[:2, 4:5], 2, axis=1))


def test_grid_tiles_cover_every_band_pixel():
    band = np.zeros((70, 90), bool)
    band[5, 5] = band[69, 89] = band[33, 40] = True
    corners = grid_tiles(band, 16)
    assert sorted(map(tuple, corners)) == [(0, 0), (32, 32), (64, 80)]


def test_refinement_changes_only_the_band_and_snaps_to_the_photo(refiner_manifest):
    rgb, truth = red_car()
    coarse = soft_coarse(truth)
    refiner = open_refiner(refiner_manifest)
    out = refiner.refine(coarse, rgb)
    band = band_mask(coarse, refiner.spec.radius)
    assert band.any() and (~band).any()
    assert np.array_equal(out[~band], coarse[~band])  # nothing moves outside the band
    correction = 20 * ((rgb[..., 0] / 127.5 - 1) - (rgb[..., 1] / 127.5 - 1)) - 10
    expected = 255 / (1 + np.exp(-(PRIOR_LOGIT[coarse] + correction)))
    assert np.abs(out[band].astype(float) - expected[band]).max() <= 1  # sigmoid(coarse logit + correction)

    def iou(mask):
        return (mask & (truth == 1)).sum() / (mask | (truth == 1)).sum()

    assert iou(out > 127) > iou(coarse > 127) + 0.02 and iou(out > 127) > 0.99


def test_a_photo_without_an_outline_is_left_alone(refiner_manifest):
    refiner = open_refiner(refiner_manifest)
    rgb = np.full((50, 60, 3), 128, np.uint8)
    for prob in (np.zeros((50, 60), np.uint8), np.full((50, 60), 255, np.uint8)):
        assert refiner.refine(prob, rgb) is prob
    with pytest.raises(ValueError, match="differ in size"):
        refiner.refine(np.zeros((50, 60), np.uint8), rgb[:40])


def test_a_photo_over_max_side_is_refined_smaller_and_answered_at_its_size(tmp_path):
    manifest = add_learned_refiner(make_red_model(tmp_path, size=64, aspect_range=[1.0, 1.8]), max_side=200)
    refiner = open_refiner(manifest)
    rgb, truth = red_car()
    coarse = soft_coarse(truth)
    assert refiner.spec.work_size((400, 240)) == (200, 120)
    out = refiner.at_photo(coarse, Image.fromarray(rgb))
    assert out.shape == coarse.shape
    assert ((out > 127) & (truth == 1)).sum() / ((out > 127) | (truth == 1)).sum() > 0.98


def test_every_consumer_refines_unless_quality_is_fast(refiner_manifest, tmp_path):
    rgb, truth = red_car()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    data = buf.getvalue()
    seg = Segmenter(refiner_manifest, providers=CPU)
    best, fast = seg.predict_masks([data])[0], seg.predict_masks([data], quality="fast")[0]
    assert best.shape == fast.shape == truth.shape and not np.array_equal(best, fast)
    with pytest.raises(ValueError, match="quality"):
        seg.predict_masks([data], quality="slow")
    with TestClient(create_app(ServiceSettings(model=refiner_manifest))) as client:
        answers = {}
        for quality in ("best", "fast"):
            r = client.post(f"/segment?quality={quality}", files={"file": ("car.png", data, "image/png")})
            assert r.status_code == 200
            answers[quality] = np.asarray(Image.open(io.BytesIO(r.content))) > 0
        assert np.array_equal(answers["best"], best == 1) and np.array_equal(answers["fast"], fast == 1)
        r = client.post("/segment?quality=slow", files={"file": ("car.png", data, "image/png")})
        assert r.status_code == 422 and "quality" in r.text
        # size=model is the network's own answer: no refinement at the photo's resolution
        a, b = (client.post(f"/segment?size=model&quality={q}", files={"file": ("car.png", data, "image/png")})
                for q in ("best", "fast"))  # fmt: skip
        assert a.content == b.content
        r = client.post("/segment/batch?quality=fast", files=[("files", ("car.png", data, "image/png"))])
        assert r.status_code == 200 and r.json()["results"][0]["width"] == 400


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sha256": "0" * 64}, "do not belong together"),
        ({"file": "missing.onnx"}, "not found"),
        ({"margin": -1}, "malformed manifest"),
        ({"tile": 15}, "malformed manifest"),  # tile + 2 margin not a multiple of 4
        ({"radius": 0}, "malformed manifest"),
        ({"file": "refine.bin"}, "malformed manifest"),
        ({"window": 3}, "malformed manifest"),  # an unknown parameter
    ],
)
def test_a_malformed_learned_stage_is_refused_at_load(refiner_manifest, change, message):
    data = json.loads(refiner_manifest.read_text())
    data["output"]["refine"][1].update(change)
    refiner_manifest.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=message):
        load_manifest(refiner_manifest)


def test_stages_run_guided_then_learned_and_old_manifests_still_load(refiner_manifest):
    data = json.loads(refiner_manifest.read_text())
    stages = data["output"]["refine"]
    for bad in ([stages[1], stages[0]], [stages[0], stages[0], stages[1]], [stages[1], stages[1]], "guided"):
        data["output"]["refine"] = bad
        refiner_manifest.write_text(json.dumps(data))
        with pytest.raises(ManifestError, match="malformed manifest"):
            load_manifest(refiner_manifest)
    assert Refinement.parse({}) == Refinement() and Refinement.parse([]) == Refinement()
    assert Refinement.parse({"method": "guided"}).model.method == "guided"
    assert Refinement.parse([stages[1]]).photo == LearnedRefine(**{k: v for k, v in stages[1].items() if k != "method"})
