"""The service with a multi-band model beside the car model: POST /segment?model=clouds, its JSON and PNG,
and the 415/422 answers that say what the model expected."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from fastapi.testclient import TestClient
from PIL import Image

from carmask.rle import decode
from service.app import create_app
from service.schemas import PatchClasses
from service.settings import ServiceSettings
from tests.fixtures import cloud_patch, encode, make_cloud_model, make_red_model, red_box_photo


def tiff(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, array, planarconfig="contig")
    return buf.getvalue()


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    make_red_model(folder, name="red")
    make_cloud_model(folder, name="clouds")
    settings = ServiceSettings(model=folder / "red.json", models=[folder], access_log=False)
    with TestClient(create_app(settings)) as client:
        yield client


def post(client, data: bytes, name="patch.tif", **params):
    return client.post("/segment", params={"model": "clouds", **params}, files={"file": (name, data, "image/tiff")})


def test_models_lists_the_cloud_model_with_its_bands_and_classes(client):
    models = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert models["clouds"]["task"] == "multiclass-segmentation"
    assert models["clouds"]["bands"] == ["blue", "green", "red", "nir"]
    assert models["clouds"]["classes"] == ["clear", "thin_cloud", "thick_cloud", "shadow"]
    assert models["red"].get("bands") is None


def test_json_answer_gives_cover_classes_and_rle(client):
    patch, classes = cloud_patch(64, 64, fill_rows=16)
    response = post(client, tiff(patch))
    assert response.status_code == 200, response.text
    body = response.json()
    valid = classes != 255
    cloud = np.isin(classes, [1, 2]) & valid
    assert body["valid_pixels"] == int(valid.sum()) and body["fill_pixels"] == 16 * 64
    assert body["cloud_cover_pct"] == pytest.approx(100 * cloud.sum() / valid.sum(), abs=1e-3)
    assert body["shadow_pct"] == pytest.approx(100 * (classes == 3).sum() / valid.sum(), abs=1e-3)
    assert sum(body["classes"].values()) == pytest.approx(100.0, abs=1e-3)
    for index, name in enumerate(["clear", "thin_cloud", "thick_cloud", "shadow"]):
        np.testing.assert_array_equal(decode(body["rle"][name], 64, 64), (classes == index).astype(np.uint8))
    assert (body["model"], body["width"], body["height"]) == ("clouds", 64, 64)
    PatchClasses.model_validate(body)  # the contract's schema of this answer


def test_png_answer_is_the_class_index_map(client):
    patch, classes = cloud_patch(48, 80, fill_rows=2)
    response = post(client, npy(patch), name="patch.npy", format="png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.mode == "P"
    np.testing.assert_array_equal(np.asarray(image), classes)
    assert response.headers["X-Cover"].startswith("cloud_cover=")


def test_bands_in_another_order_are_named_by_the_client(client):
    patch, classes = cloud_patch()
    files_order = patch[..., [3, 0, 1, 2]]  # nir, blue, green, red
    assert post(client, tiff(files_order)).status_code == 200  # same count: the server cannot tell ...
    response = post(client, tiff(files_order), format="png", bands="nir,blue,green,red")  # ... the client can
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(response.content))), classes)
    eight = np.concatenate([patch, patch], axis=-1)
    names = "blue,green,red,nir,swir1,swir2,cirrus,tir"
    assert post(client, tiff(eight), bands=names).status_code == 200  # extra bands are left out


@pytest.mark.parametrize(
    ("data", "params", "status", "words"),
    [
        (tiff(np.zeros((64, 64, 8), np.float32)), {}, 422, "has 8 bands; expected 4: blue, green, red, nir"),
        (tiff(np.zeros((64, 64, 3), np.float32)), {"bands": "blue,green,red"}, 422, "lacks nir"),
        (tiff(np.zeros((8, 64, 4), np.float32)), {}, 422, "this model takes sides of 16 to 256"),
        (tiff(np.zeros((300, 64, 4), np.float32)), {}, 413, "largest side of 256; whole scenes"),
        (tiff(np.zeros((64, 64, 4), np.uint16)), {}, 422, "integers (uint16): name the sensor"),
        (
            tiff(np.full((64, 64, 4), 3000, np.uint16)),
            {"sensor": "sentinel2-l2a", "bands": "B02,B03,B04"},
            422,
            "has 4 bands; expected 3 (as the bands given name them)",
        ),
        (tiff(np.full((64, 64, 5), 3000, np.uint16)), {"sensor": "landsat7"}, 422, "landsat7 file with 5 bands"),
        (tiff(np.full((64, 64, 4), 3000.0, np.float32)), {}, 422, "blue band runs 3000 to 3000"),
        (tiff(np.zeros((64, 64, 4), np.float32)), {"sensor": "modis"}, 422, "sentinel2-l2a"),
        (tiff(np.zeros((64, 64, 4), np.uint16)), {"sensor": "landsat8", "dn_scale": "0"}, 422, "dn_scale"),
        (encode(red_box_photo(64, 64)[0]), {}, 415, "TIFF/GeoTIFF or NumPy .npy"),
        (b"II*\x00" + b"\x00" * 40, {}, 422, "corrupt or unreadable TIFF"),
        (tiff(np.zeros((64, 64, 4), np.float32)), {"format": "cutout"}, 422, "answers rle"),
    ],
)
def test_patches_that_do_not_fit_get_what_was_expected(client, data, params, status, words):
    response = post(client, data, **params)
    assert response.status_code == status, response.text
    body = response.json()
    assert words in body["detail"] and set(body) == {"error", "detail"}


def test_sensor_presets_turn_digital_numbers_into_reflectance(client):
    patch, classes = cloud_patch(64, 64, fill_rows=4)
    s2 = np.round(patch * 10000 + 1000).astype(np.uint16)  # L2A, baseline 04.00: reflectance = (DN - 1000) / 1e4
    s2[:4] = 0  # the product's fill
    response = post(client, tiff(s2), format="png", sensor="sentinel2-l2a")
    assert response.status_code == 200, response.text
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(response.content))), classes)
    twelve = np.zeros((64, 64, 12), np.uint16)
    twelve[..., [1, 2, 3, 7]] = s2  # B01..B12 without B10: blue, green, red are 2-4, B08 (nir) is 8th
    response = post(client, tiff(twelve), format="png", sensor="sentinel2-l2a")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(response.content))), classes)
    landsat = np.round((patch + 0.2) / 2.75e-5).astype(np.uint16)[..., ::-1].copy()  # C2 L2, bands named
    response = post(client, tiff(landsat), format="png", sensor="landsat8", bands="SR_B5,SR_B4,SR_B3,SR_B2")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(response.content)))[4:], classes[4:])
    listed = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert listed["clouds"]["sensors"] == [] and listed["red"].get("sensors") is None  # fixture: none named, any


def test_aliases_answer_for_their_model_and_may_not_collide(tmp_path):
    from carmask.manifest import ManifestError
    from tests.fixtures import rewrite_manifest

    make_red_model(tmp_path, name="red")
    make_cloud_model(tmp_path, name="carmask-clouds")
    rewrite_manifest(tmp_path / "carmask-clouds.json", aliases=["clouds"])
    settings = ServiceSettings(model=tmp_path / "red.json", models=[tmp_path], access_log=False)
    with TestClient(create_app(settings)) as client:
        patch, _ = cloud_patch()
        assert post(client, tiff(patch)).json()["model"] == "carmask-clouds"  # post() asks for model=clouds
        listed = {m["name"]: m for m in client.get("/models").json()["models"]}
        assert listed["carmask-clouds"]["aliases"] == ["clouds"]
    rewrite_manifest(tmp_path / "carmask-clouds.json", aliases=["red"])
    with pytest.raises(ManifestError, match="alias 'red'"), TestClient(create_app(settings)):
        pass


def test_photo_models_refuse_patches_and_band_options(client):
    patch, _ = cloud_patch()
    tif = client.post("/segment", params={"model": "red"}, files={"file": ("p.tif", tiff(patch), "image/tiff")})
    assert tif.status_code == 415 and tif.json()["error"] == "unsupported_image"
    photo = ("car.jpg", encode(red_box_photo(64, 64)[0]), "image/jpeg")
    banded = client.post("/segment", params={"bands": "blue"}, files={"file": photo})
    assert banded.status_code == 200  # photo models ignore bands (documented), as patch models ignore threshold
    batch = client.post("/segment/batch", params={"model": "clouds"}, files=[("files", ("p.tif", tiff(patch)))])
    assert batch.status_code == 422 and "POST /segment" in batch.json()["detail"]
    assert client.post("/segment", files={"file": photo}).status_code == 200  # the car path is untouched
