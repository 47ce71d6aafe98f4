"""Edge-aware refinement: the guided filter on known arrays, the manifest's `output.refine`, every consumer."""

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
from carmask.refine import Refine, guided_filter
from service.app import create_app
from service.settings import ServiceSettings
from tests.fixtures import make_red_model

GUIDED = Refine("guided", radius=2, eps=1e-3)


def step_and_ramp(centre: float, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A guide with a sharp edge between columns 15 and 16; probabilities ramping across `centre` over 8 px."""
    guide = np.zeros((size, size), np.float32)
    guide[:, 16:] = 1.0
    ramp = np.clip((np.arange(size) - centre) / 8 + 0.5, 0, 1).astype(np.float32)
    return guide, np.tile(ramp, (size, 1))


def test_the_filter_puts_a_soft_edge_where_the_photos_edge_is():
    guide, ramp = step_and_ramp(centre=16.0)
    out = guided_filter(guide, ramp, 2, 1e-3)
    assert out[16, 16] - out[16, 15] > 2.5 * (ramp[16, 16] - ramp[16, 15])  # the rise gathers at the edge
    assert abs(out[16, 2]) < 1e-4 and abs(out[16, 29] - 1) < 1e-4  # far from the edge: unchanged
    guide, late = step_and_ramp(centre=17.5)  # the network's edge 1.5 px right of the photo's
    first = lambda p: int(np.argmax(p[16] > 0.5))  # noqa: E731 - the mask's first column
    assert first(late) == 18 and first(guided_filter(guide, late, 2, 1e-3)) == 17  # a pixel closer to it


def test_on_a_flat_photo_it_only_smooths():
    """No edge to follow (variance 0): a = 0, so the output is the probabilities' mean of means."""
    rng = np.random.default_rng(0)
    prob = rng.random((20, 24), dtype=np.float32)
    flat = np.full((20, 24), 0.4, np.float32)
    box = lambda x: cv2.boxFilter(x, -1, (5, 5))  # noqa: E731
    assert np.allclose(guided_filter(flat, prob, 2, 1e-3), box(box(prob)), atol=1e-5)


def test_refine_keeps_zero_and_range_and_none_is_a_no_op():
    pixels = np.random.default_rng(1).integers(0, 255, (30, 40, 3), np.uint8)
    zero = np.zeros((30, 40), np.float32)
    assert np.array_equal(GUIDED.apply(zero, pixels), zero)  # a dropped region stays dropped
    prob = np.random.default_rng(2).random((30, 40), dtype=np.float32)
    out = GUIDED.apply(prob, pixels)
    assert out.shape == prob.shape and out.min() >= 0 and out.max() <= 1 and not np.array_equal(out, prob)
    assert Refine().apply(prob, pixels) is prob and GUIDED.apply(prob, None) is prob
    with pytest.raises(ValueError, match="differ in size"):
        GUIDED.apply(prob, pixels[:20])


@pytest.mark.parametrize("bad", [{"method": "bilateral"}, {"radius": 0}, {"radius": 1.5}, {"eps": 0}, {"sigma": 2}])
def test_a_bad_refine_is_a_clear_manifest_error(tmp_path, bad):
    path = make_red_model(tmp_path)
    data = json.loads(path.read_text())
    data["output"]["refine"] = {"method": "guided", **bad}
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="malformed manifest"):
        load_manifest(path)


def blurred_car_png(size=(300, 200)) -> tuple[bytes, np.ndarray]:
    """A grey photo (3:2, so the 64x64 model letterboxes it) with a red car whose edges are blurred."""
    w, h = size
    photo = np.full((h, w, 3), 128, np.uint8)
    truth = np.zeros((h, w), bool)
    truth[50:150, 60:240] = True
    photo[truth] = (255, 0, 0)
    photo = cv2.GaussianBlur(photo, (0, 0), 3)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG")
    return buf.getvalue(), truth


def refined_model(tmp_path, refine: dict):
    path = make_red_model(tmp_path / (refine.get("method") or "none"), size=64, aspect_range=[1.0, 1.2])
    data = json.loads(path.read_text())
    data["output"]["refine"] = refine
    path.write_text(json.dumps(data))
    return path


def test_every_consumer_refines_as_the_manifest_says(tmp_path):
    data, truth = blurred_car_png()
    plain = Segmenter(refined_model(tmp_path, {}), providers=["CPUExecutionProvider"])
    guided = Segmenter(refined_model(tmp_path, {"method": "guided"}), providers=["CPUExecutionProvider"])
    # segment_files (carmask-predict, bulk's path): the guide is the letterboxed input's content
    a, b = plain.predict_masks([data])[0].astype(bool), guided.predict_masks([data])[0].astype(bool)
    assert a.shape == b.shape == truth.shape and (a != b).any()
    for mask in (a, b):
        assert (mask & truth).sum() / (mask | truth).sum() > 0.9
    # the service's probabilities are the refined ones
    with TestClient(create_app(ServiceSettings(model=guided.manifest.path))) as client:
        r = client.post("/segment?format=probabilities", files={"file": ("car.png", data, "image/png")})
        assert r.status_code == 200
        served = np.asarray(Image.open(io.BytesIO(r.content)))
    with TestClient(create_app(ServiceSettings(model=plain.manifest.path))) as client:
        r = client.post("/segment?format=probabilities", files={"file": ("car.png", data, "image/png")})
        unrefined = np.asarray(Image.open(io.BytesIO(r.content)))
    assert served.shape == unrefined.shape == truth.shape and not np.array_equal(served, unrefined)
    assert np.array_equal(served > 127, b)  # the mask and the probabilities agree
