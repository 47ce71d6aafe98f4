"""POST /segment's glass and cutout options, in-process, on a hand-built model with a glass output."""

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from scipy import ndimage

from carmask import rle
from carmask.manifest import ManifestError
from service.app import create_app
from service.settings import ServiceSettings
from tests.fixtures import encode, glass_car_photo, make_glass_model, rewrite_manifest


@pytest.fixture(scope="module")
def glass_model(tmp_path_factory):
    return make_glass_model(tmp_path_factory.mktemp("glass"))


@pytest.fixture(scope="module")
def client(glass_model, red_model):
    settings = ServiceSettings(model=glass_model, models=str(red_model.parent), max_waiting=16)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def upload():
    image, car, window = glass_car_photo()
    return ("car.png", encode(image, "PNG"), "image/png"), car, window


def post(client, upload, **params):
    return client.post("/segment", params=params, files={"file": upload})


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero((a > 0) & (b > 0)) / max(1, np.count_nonzero((a > 0) | (b > 0)))


def test_windows_format_is_the_glass_mask(client, upload):
    file, _, window = upload
    r = post(client, file, format="windows")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    mask = np.asarray(Image.open(io.BytesIO(r.content)))
    assert mask.shape == window.shape and set(np.unique(mask)) <= {0, 255}
    assert iou(mask, window) > 0.9


def test_rle_carries_the_windows_beside_the_car(client, upload):
    file, car, window = upload
    body = post(client, file, format="rle").json()
    assert iou(rle.decode(body["rle"], body["height"], body["width"]), car) > 0.95
    assert iou(rle.decode(body["windows"], body["height"], body["width"]), window) > 0.9
    red = post(client, file, format="rle", model="red").json()
    assert "windows" not in red  # a model without glass answers as before


def test_batch_json_carries_the_windows(client, upload):
    file, _, window = upload
    body = client.post("/segment/batch", files=[("files", file)]).json()
    entry = body["results"][0]
    assert iou(rle.decode(entry["windows"], entry["height"], entry["width"]), window) > 0.9


def test_transparent_windows_on_a_colour(client, upload):
    file, car, window = upload
    r = post(client, file, format="cutout", windows="transparent", bg_color="0000ff", output="jpeg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    out = np.asarray(Image.open(io.BytesIO(r.content))).astype(int)
    assert np.abs(out[ndimage.binary_erosion(car == 0, iterations=4)] - (0, 0, 255)).max() < 12
    body = ndimage.binary_erosion(car > 0, iterations=4) & ~ndimage.binary_dilation(window > 0, iterations=4)
    assert np.abs(out[body] - (220, 20, 30)).mean() < 8  # the body stays the photo's, opaque


def test_cutout_options_together(client, upload):
    file, car, _ = upload
    r = post(client, file, format="cutout", shadow="contact", crop="true", crop_margin="0.1", decontaminate="true",
             output="webp")  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    image = Image.open(io.BytesIO(r.content))
    assert image.size == (int(r.headers["X-Image-Width"]), int(r.headers["X-Image-Height"]))
    rows, cols = np.flatnonzero(car.any(1)), np.flatnonzero(car.any(0))
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert image.size == (w + 2 * round(0.1 * w), h + 2 * round(0.1 * h))


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"format": "cutout", "bg_color": "red"}, "bg_color"),
        ({"format": "cutout", "crop_margin": "0.9"}, "crop_margin"),
        ({"format": "cutout", "windows": "open"}, "'opaque', 'transparent' or 'tinted'"),
        ({"format": "cutout", "shadow": "drop"}, "'none' or 'contact'"),
        ({"format": "cutout", "output": "gif"}, "'png', 'webp' or 'jpeg'"),
        ({"format": "cutout", "output": "jpeg"}, "opaque bg_color"),
        ({"format": "cutout", "windows": "transparent", "model": "red"}, "marks glass"),
        ({"format": "windows", "model": "red"}, "marks glass"),
    ],
)
def test_bad_options_get_422_saying_what_is_allowed(client, upload, params, words):
    r = post(client, upload[0], **params)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request" and words in r.json()["detail"]


def test_other_formats_ignore_cutout_options(client, upload):
    file = upload[0]
    plain = post(client, file, format="png")
    r = post(client, file, format="png", shadow="contact", crop="true", output="jpeg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content == plain.content


def test_openapi_documents_every_option(client):
    params = {p["name"]: p for p in client.get("/openapi.json").json()["paths"]["/segment"]["post"]["parameters"]}
    for name in ("windows", "shadow", "bg_color", "crop", "crop_margin", "output", "decontaminate"):
        assert params[name].get("description"), name
    schema = json.dumps(client.get("/openapi.json").json()["paths"]["/segment"]["post"]["responses"]["200"])
    assert "image/webp" in schema and "image/jpeg" in schema


def test_windows_naming_a_missing_output_is_refused_at_load(tmp_path):
    path = make_glass_model(tmp_path)
    rewrite_manifest(path, output={"windows": {"name": "glass", "threshold": 0.5}})
    with pytest.raises(ManifestError, match="outputs are"), TestClient(create_app(ServiceSettings(model=path))):
        pass
    rewrite_manifest(path, output={"windows": {"name": "windows", "threshold": 2}})
    with pytest.raises(ManifestError, match="windows"), TestClient(create_app(ServiceSettings(model=path))):
        pass
