"""Mirrored test-time augmentation is the manifest's (input.flip_tta); a caller may turn it on or off."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from carmask.inference import Segmenter
from service.app import create_app
from service.settings import ServiceSettings
from tests.fixtures import make_red_model


def with_flip_tta(tmp_path, on: bool):
    path = make_red_model(tmp_path)
    data = json.loads(path.read_text())
    data["input"]["flip_tta"] = on
    path.write_text(json.dumps(data))
    return path


def left_heavy_run(seg: Segmenter) -> list[np.ndarray]:
    """Make the model's answer depend on which side a pixel is (a real network's is not mirror-symmetric):
    1 on the left half of its input, 0 on the right; returns the inputs it was called with (a list)."""
    calls = []

    def run(x, names):
        calls.append(x.copy())
        out = np.zeros(x.shape[:3], np.float32)
        out[:, :, : x.shape[2] // 2] = 1.0
        return [out]

    seg._run = run
    return calls


@pytest.mark.parametrize("manifest_on, override, expect", [
    (True, None, True), (False, None, False), (True, False, False), (False, True, True),
])  # fmt: skip
def test_the_manifest_says_and_a_caller_overrides(tmp_path, manifest_on, override, expect):
    seg = Segmenter(with_flip_tta(tmp_path, manifest_on), flip_tta=override)
    assert seg.flip_tta is expect
    calls = left_heavy_run(seg)
    images = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), np.uint8)
    prob = seg.probabilities(images)
    assert len(calls) == 1  # with the mirror images in the same call
    if expect:  # the second half of the call is the photos mirrored; its answer is mirrored back, then averaged
        assert len(calls[0]) == 4 and np.array_equal(calls[0][2:], calls[0][:2, :, ::-1])
        assert np.allclose(prob, 0.5)
    else:
        assert (prob[:, :, :16] == 1).all() and (prob[:, :, 16:] == 0).all()


def test_the_service_lists_it_and_its_setting_overrides_the_manifest(tmp_path):
    path = with_flip_tta(tmp_path, True)
    with TestClient(create_app(ServiceSettings(model=path))) as client:
        assert client.get("/models").json()["models"][0]["flip_tta"] is True
    with TestClient(create_app(ServiceSettings(model=path, flip_tta=False))) as client:
        assert client.get("/models").json()["models"][0]["flip_tta"] is False


def test_an_older_manifest_without_it_runs_once(tmp_path):
    seg = Segmenter(make_red_model(tmp_path))
    assert seg.flip_tta is False and seg.manifest.input.flip_tta is False


def test_a_cloud_model_averages_with_the_mirrored_patch_in_the_same_call(tmp_path):
    from carmask.clouds.segmenter import PatchSegmenter
    from tests.fixtures import cloud_patch, make_cloud_model

    plain = PatchSegmenter(make_cloud_model(tmp_path))
    mirrored = PatchSegmenter(make_cloud_model(tmp_path), flip_tta=True)
    patch, classes = cloud_patch()
    calls = []
    run = mirrored._run
    mirrored._run = lambda x: calls.append(len(x)) or run(x)
    result = mirrored.classify(patch)
    assert calls == [2]  # the patch and its mirror image, one call
    expected = 0.5 * (plain.classify(patch).probabilities + plain.classify(patch[:, ::-1]).probabilities[:, ::-1])
    assert np.allclose(result.probabilities, expected, atol=1e-6)
    assert np.array_equal(result.class_map, classes)  # a per-pixel model: the mirror agrees
