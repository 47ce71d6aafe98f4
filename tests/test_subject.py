"""Main-subject selection: the mask keeps the photo's car and drops other cars and specks."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from carmask import rle
from carmask.inference import Segmenter
from carmask.manifest import ManifestError, load_manifest
from carmask.subject import Subject
from service.app import create_app
from service.settings import ServiceSettings
from tests.fixtures import make_red_model

MAIN = Subject(mode="main", join=0.05, keep_ratio=0.5)  # join: 5 px on a 100-pixel output


def blobs(*boxes: tuple[int, int, int, int], size: int = 100) -> np.ndarray:
    """Probabilities 0.9 inside each (y0, y1, x0, x1) box, 0.1 elsewhere."""
    prob = np.full((size, size), 0.1, np.float32)
    for y0, y1, x0, x1 in boxes:
        prob[y0:y1, x0:x1] = 0.9
    return prob


def test_all_keeps_every_region_and_main_drops_a_far_small_one():
    prob = blobs((10, 60, 10, 60), (80, 90, 80, 90))  # the car, and a small one far from it
    assert Subject().select(prob, 0.5) is prob
    out = MAIN.select(prob, 0.5)
    expected = prob.copy()
    expected[80:90, 80:90] = 0  # the other region gone, everything else as it was
    assert np.array_equal(out, expected)
    assert (prob[80:90, 80:90] == 0.9).all()  # a copy: the caller's array is unchanged


def test_a_region_within_reach_of_the_car_belongs_to_it():
    prob = blobs((10, 60, 10, 60), (30, 40, 63, 66))  # a mirror 3 px away (join 5 px)
    assert MAIN.select(prob, 0.5) is prob
    far = blobs((10, 60, 10, 60), (30, 40, 70, 73))  # 10 px away: not the car's
    assert (MAIN.select(far, 0.5)[30:40, 70:73] == 0).all()


def test_a_large_second_part_stays_wherever_it_lies():
    """A car cut in two by a tree: the smaller half is over keep_ratio of the larger one."""
    prob = blobs((10, 60, 5, 40), (10, 60, 60, 90))  # 50x35 and 50x30 (0.86 of it), 20 px apart
    assert MAIN.select(prob, 0.5) is prob
    assert (Subject("main", 0.0, 0.9).select(prob, 0.5)[10:60, 60:90] == 0).all()  # 0.86 < 0.9: dropped


def test_a_second_view_of_the_same_height_stays_unless_the_frame_cuts_it():
    """A livery sheet: two views one above the other, the second marked only in part (a third of the area)."""
    prob = blobs((5, 40, 10, 90), (55, 88, 30, 60))  # 35 x 80, and 33 x 30 below it
    assert (MAIN.select(prob, 0.5)[55:88, 30:60] == 0).all()  # by area alone: dropped
    sheet = Subject("main", 0.05, 0.5, same_height=0.8)
    assert sheet.select(prob, 0.5) is prob  # as tall as the main view: kept
    neighbour = blobs((5, 40, 10, 90), (55, 88, 70, 100))  # as tall, but cut by the frame's side
    assert (sheet.select(neighbour, 0.5)[55:88, 70:100] == 0).all()
    short = blobs((5, 40, 10, 90), (70, 88, 30, 60))  # half as tall: a car further away
    assert (sheet.select(short, 0.5)[70:88, 30:60] == 0).all()
    with pytest.raises(ValueError, match="same_height"):
        Subject("main", same_height=1.5)


def test_a_whole_car_is_the_subject_beside_a_larger_one_the_frame_cuts():
    """A street frame: a car passing close to the camera, cut by the frame's side, and the whole car behind."""
    prob = blobs((20, 95, 60, 100), (30, 55, 10, 40))  # 75 x 40 at the right side, and 25 x 30 whole
    assert (MAIN.select(prob, 0.5)[30:55, 10:40] == 0).all()  # by area alone the cut car wins
    whole = Subject("main", 0.05, 0.5, prefer_whole=0.2)
    out = whole.select(prob, 0.5)
    assert (out[30:55, 10:40] == 0.9).all() and (out[20:95, 60:100] == 0).all()
    tiny = blobs((20, 95, 60, 100), (30, 35, 10, 15))  # a speck is not a subject: the cut car stays the main one
    assert (whole.select(tiny, 0.5)[20:95, 60:100] == 0.9).all()
    with pytest.raises(ValueError, match="prefer_whole"):
        Subject("main", prefer_whole=0)


def test_size_alone_keeps_no_region_the_frame_cuts_beside_a_whole_car():
    """A street frame: the subject whole, and a passing car the frame's side cuts, larger than keep_ratio of it."""
    prob = blobs((30, 70, 10, 50), (40, 80, 70, 100))  # 40 x 40 whole, 40 x 30 at the right side (0.75 of it)
    assert MAIN.select(prob, 0.5) is prob  # by size it stays
    whole = Subject("main", 0.05, 0.5, prefer_whole=0.2)
    out = whole.select(prob, 0.5)
    assert (out[30:70, 10:50] == 0.9).all() and (out[40:80, 70:100] == 0).all()
    inside = blobs((30, 70, 10, 50), (40, 80, 60, 90))  # the same second region whole: size keeps it
    assert whole.select(inside, 0.5) is inside


def test_a_photo_whose_main_region_is_unsure_has_no_car():
    sure = Subject("main", 0.05, 0.5, min_confidence=0.8)
    car = blobs((10, 60, 10, 60))  # one region at 0.9
    assert sure.select(car, 0.5) is car
    unsure = car.copy()
    unsure[10:60, 10:60] = 0.7  # a painting the model half-believes: nothing is a car
    out = sure.select(unsure, 0.5)
    assert out.shape == unsure.shape and not out.any()
    assert MAIN.select(unsure, 0.5) is unsure  # without the rule it stays
    mixed = blobs((10, 60, 10, 60), (70, 90, 70, 90))
    mixed[10:60, 10:60] = np.where(np.arange(50) % 2, 0.95, 0.6)  # mean 0.775 over the main region
    assert not sure.select(mixed, 0.5).any()
    assert (Subject("main", 0.05, 0.5, min_confidence=0.75).select(mixed, 0.5)[10:60, 10:60] > 0.5).all()
    with pytest.raises(ValueError, match="min_confidence"):
        Subject("main", min_confidence=1.5)


def test_regions_are_found_at_the_threshold_asked_for():
    prob = blobs((10, 60, 10, 60), (80, 90, 80, 90))
    prob[80:90, 80:90] = 0.4  # below 0.5: not a region, left as is; above 0.3: a region, dropped
    assert MAIN.select(prob, 0.5) is prob
    assert (MAIN.select(prob, 0.3)[80:90, 80:90] == 0).all()


def test_nothing_or_one_region_is_left_alone():
    empty = np.full((50, 50), 0.2, np.float32)
    assert MAIN.select(empty, 0.5) is empty
    one = blobs((5, 20, 5, 20), size=50)
    assert MAIN.select(one, 0.5) is one


@pytest.mark.parametrize("bad", [{"mode": "largest"}, {"join": -0.1}, {"keep_ratio": 0}, {"radius": 3}])
def test_a_bad_subject_is_a_clear_manifest_error(tmp_path, bad):
    path = make_red_model(tmp_path)
    data = json.loads(path.read_text())
    data["output"]["subject"] = {"mode": "main", **bad}
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="malformed manifest"):
        load_manifest(path)


def two_cars_png(size: int = 200) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A grey photo with a big red car and a small one far from it; their true masks."""
    photo = np.full((size, size, 3), 128, np.uint8)
    big, small = np.zeros((size, size), bool), np.zeros((size, size), bool)
    big[40:140, 20:120] = True
    small[160:185, 160:185] = True
    photo[big | small] = (255, 0, 0)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG")
    return buf.getvalue(), big, small


def main_subject_model(tmp_path, mode: str):
    path = make_red_model(tmp_path / mode, size=64)
    data = json.loads(path.read_text())
    data["output"]["subject"] = {"mode": mode}
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("mode", ["main", "all"])
def test_the_segmenter_masks_what_the_manifest_says(tmp_path, mode):
    data, big, small = two_cars_png()
    seg = Segmenter(main_subject_model(tmp_path, mode), providers=["CPUExecutionProvider"])
    mask = seg.predict_masks([data])[0].astype(bool)
    truth = big if mode == "main" else big | small
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9
    assert mask[small].mean() == 0.0 if mode == "main" else mask[small].mean() > 0.9


def test_the_service_answers_with_the_main_subject(tmp_path):
    data, big, small = two_cars_png()
    with TestClient(create_app(ServiceSettings(model=main_subject_model(tmp_path, "main")))) as client:
        response = client.post("/segment", files={"file": ("two.png", data, "image/png")})
        assert response.status_code == 200
        mask = np.asarray(Image.open(io.BytesIO(response.content))) > 0
        assert (mask & big).sum() / (mask | big).sum() > 0.9 and not mask[small].any()
        probabilities = client.post("/segment?format=probabilities", files={"file": ("two.png", data, "image/png")})
        # the same selection: thresholded, the probabilities give the mask (a faint rim may stay below it)
        assert (np.asarray(Image.open(io.BytesIO(probabilities.content)))[small] <= 127).all()
        every = client.post("/segment?cars=all", files={"file": ("two.png", data, "image/png")})
        assert (np.asarray(Image.open(io.BytesIO(every.content))) > 0)[small].mean() > 0.9  # asked for every car
        batch = client.post("/segment/batch?cars=all", files=[("files", ("a.png", data, "image/png"))] * 2)
        for entry in batch.json()["results"]:
            assert rle.decode(entry["rle"], entry["height"], entry["width"])[small].mean() > 0.9
        batch = client.post("/segment/batch", files=[("files", ("a.png", data, "image/png"))])
        entry = batch.json()["results"][0]
        assert not rle.decode(entry["rle"], entry["height"], entry["width"])[small].any()
        bad = client.post("/segment?cars=largest", files={"file": ("two.png", data, "image/png")})
        assert bad.status_code == 422 and "cars" in json.dumps(bad.json())


@pytest.mark.parametrize(("flag", "small_kept"), [([], False), (["--cars", "all"], True), (["--cars", "main"], False)])
def test_carmask_predict_keeps_the_main_car_unless_told(tmp_path, flag, small_kept):
    from carmask.predict import main

    data, big, small = two_cars_png()
    (tmp_path / "two.png").write_bytes(data)
    model = main_subject_model(tmp_path, "main")
    out = tmp_path / "out"
    assert main([str(tmp_path / "two.png"), "--out", str(out), "--model", str(model), "--quiet", *flag]) == 0
    mask = np.asarray(Image.open(out / "two_mask.png")) > 0
    truth = big | small if small_kept else big
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9
    assert (mask[small].mean() > 0.9) if small_kept else not mask[small].any()
