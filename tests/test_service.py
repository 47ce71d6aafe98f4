"""The service in-process: every endpoint, format and listed bad input."""

import io
import json
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from carmask import rle
from carmask.manifest import ManifestError
from service.app import create_app
from service.settings import ServiceSettings
from tests.fixtures import encode, make_red_model, red_box_photo, rewrite_manifest
from tests.test_imaging import exif_rotated_jpeg


def settings(model, **overrides) -> ServiceSettings:
    return ServiceSettings(model=model, **overrides)


@pytest.fixture(scope="module")
def client(red_model):
    # max_waiting: room for every concurrent request of these tests (admission has its own tests in test_serving)
    app = create_app(
        settings(red_model, max_upload_bytes=2_000_000, max_pixels=4_000_000, max_batch_files=4, max_waiting=16)
    )
    with TestClient(app) as c:
        yield c


def photo_file(name="car.jpg", size=(480, 320), fmt="JPEG", mime="image/jpeg", **kw):
    image, mask = red_box_photo(*size)
    return (name, encode(image, fmt, **kw), mime), mask


def agreement(mask_png: bytes, truth: np.ndarray) -> float:
    mask = np.asarray(Image.open(io.BytesIO(mask_png)))
    assert mask.shape == truth.shape
    return ((mask > 0) == truth.astype(bool)).mean()


def test_health_ready_model_docs(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready == {
        "status": "ready",
        "model": "red",
        "version": "0.0.1",
        "provider": "CPUExecutionProvider",
        "models": ["red"],
    }
    assert client.get("/model").json()["input"]["height"] == 64
    assert client.get("/docs").status_code == 200
    assert "/segment/batch" in client.get("/openapi.json").json()["paths"]


def test_png_mask_at_the_photo_size(client):
    file, truth = photo_file()
    r = client.post("/segment", files={"file": file})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert (r.headers["x-image-width"], r.headers["x-image-height"]) == ("480", "320")
    assert set(np.unique(np.asarray(Image.open(io.BytesIO(r.content))))) <= {0, 255}
    assert agreement(r.content, truth) > 0.98


def test_rle_format_decodes_to_the_mask(client):
    file, truth = photo_file(size=(300, 200))
    body = client.post("/segment", params={"format": "rle"}, files={"file": file}).json()
    assert (body["width"], body["height"]) == (300, 200)
    mask = rle.decode(body["rle"], 200, 300)
    assert (mask == truth).mean() > 0.98
    assert body["coverage"] == pytest.approx(truth.mean(), abs=0.02)


def test_probabilities_rethreshold_to_exactly_the_served_mask(client):
    ramp = np.zeros((90, 160, 3), np.uint8)
    ramp[..., 0] = np.linspace(0, 255, 160).astype(np.uint8)  # the red model's probability rises with red
    data = encode(Image.fromarray(ramp), "PNG")
    r = client.post("/segment", params={"format": "probabilities"}, files={"file": ("ramp.png", data, "image/png")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    prob = np.asarray(Image.open(io.BytesIO(r.content)))
    assert prob.shape == (90, 160) and prob.dtype == np.uint8 and len(np.unique(prob)) > 10
    for threshold in (0.3, 0.5, 0.8):
        served = client.post(
            "/segment", params={"threshold": threshold}, files={"file": ("ramp.png", data, "image/png")}
        )
        mask = np.asarray(Image.open(io.BytesIO(served.content))) > 0
        assert np.array_equal(mask, prob > threshold * 255), threshold


def test_page_and_docs_are_served_without_any_outside_address(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    docs = client.get("/docs").text
    for text in (page.text, docs, client.get("/static/app.js").text):
        assert "http://" not in text and "https://" not in text  # no CDN: works offline
    for asset in ("/static/app.js", "/static/style.css", "/static/swagger/swagger-ui-bundle.js"):
        assert client.get(asset).status_code == 200, asset
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_cutout_is_rgba_with_transparent_background(client):
    file, truth = photo_file(name="car.png", fmt="PNG", mime="image/png")
    r = client.post("/segment", params={"format": "cutout"}, files={"file": file})
    cutout = Image.open(io.BytesIO(r.content))
    assert cutout.mode == "RGBA" and cutout.size == (480, 320)
    assert ((np.asarray(cutout)[..., 3] > 0) == truth.astype(bool)).mean() > 0.98


def test_model_size_and_threshold_options(client):
    file, _ = photo_file()
    r = client.post("/segment", params={"size": "model"}, files={"file": file})
    assert Image.open(io.BytesIO(r.content)).size == (64, 64)
    coverage = {
        thr: client.post("/segment", params={"format": "rle", **thr_param}, files={"file": file}).json()["coverage"]
        for thr, thr_param in [("default", {}), (0.5, {"threshold": 0.5}), (1.0, {"threshold": 1.0})]
    }
    assert coverage["default"] == coverage[0.5] > 0.2  # the manifest's threshold is the default
    assert coverage[1.0] == 0.0


def test_exif_rotation_is_honoured(client):
    image, truth = red_box_photo(240, 160, box=(0.1, 0.1, 0.45, 0.6))
    r = client.post("/segment", files={"file": ("r.jpg", exif_rotated_jpeg(image, 8), "image/jpeg")})
    assert agreement(r.content, truth) > 0.97


@pytest.mark.parametrize(
    "fmt,mode,kw",
    [
        ("JPEG", "CMYK", {}),
        ("JPEG", "RGB", {"progressive": True}),
        ("PNG", "RGBA", {}),
        ("PNG", "L", {}),
        ("PNG", "P", {}),
        ("WEBP", "RGB", {"lossless": True}),
        ("BMP", "RGB", {}),
        ("HEIF", "RGB", {"quality": 95}),
        ("AVIF", "RGB", {"quality": 95}),
    ],
)
def test_accepted_formats(client, fmt, mode, kw):
    image, truth = red_box_photo(200, 120)
    r = client.post("/segment", files={"file": ("x", encode(image.convert(mode), fmt, **kw), "image/" + fmt.lower())})
    assert r.status_code == 200, r.text
    if mode not in ("L",):  # greyscale loses the red the test model looks for
        assert agreement(r.content, truth) > 0.95


@pytest.mark.parametrize("fmt", ["EPS", "TGA", "TIFF", "GIF"])
def test_other_decoders_are_not_exposed(client, fmt):
    if fmt == "EPS":
        data = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    else:
        data = encode(red_box_photo(64, 48)[0], fmt)
    r = client.post("/segment", files={"file": (f"x.{fmt.lower()}", data, "application/octet-stream")})
    expect_error(r, 415, "unsupported_image")
    assert "HEIC" in r.json()["detail"]


def expect_error(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code and body["detail"]
    return body


def test_bad_inputs_get_json_errors(client):
    expect_error(client.post("/segment", files={"file": ("e.jpg", b"", "image/jpeg")}), 400, "empty_file")
    expect_error(client.post("/segment", files={"file": ("t.txt", b"hello", "text/plain")}), 415, "unsupported_image")
    jpeg = photo_file()[0][1]
    expect_error(client.post("/segment", files={"file": ("c.jpg", jpeg[:1500], "image/jpeg")}), 422, "corrupt_image")
    expect_error(client.post("/segment"), 422, "invalid_request")
    expect_error(
        client.post("/segment", params={"format": "gif"}, files={"file": ("a.jpg", jpeg)}), 422, "invalid_request"
    )
    expect_error(
        client.post("/segment", params={"threshold": 2}, files={"file": ("a.jpg", jpeg)}), 422, "invalid_request"
    )
    expect_error(client.get("/nowhere"), 404, "not_found")
    assert client.get("/health").status_code == 200  # and the service goes on


def test_upload_over_the_byte_limit(client):
    big = np.random.default_rng(0).integers(0, 255, (1200, 1200, 3), np.uint8)
    data = encode(Image.fromarray(big), "PNG")
    assert len(data) > 2_000_000
    expect_error(client.post("/segment", files={"file": ("big.png", data, "image/png")}), 413, "upload_too_large")


def test_streamed_upload_without_length_is_cut_off_at_the_limit(client):
    def body():
        for _ in range(100):  # 6.4 MB against a 2 MB limit, with no Content-Length
            yield b"x" * 65536

    r = client.post("/segment", content=body(), headers={"content-type": "multipart/form-data; boundary=abc"})
    expect_error(r, 413, "upload_too_large")


def test_image_over_the_pixel_limit(client):
    data = encode(Image.new("RGB", (2500, 2000), "grey"), "PNG")
    expect_error(client.post("/segment", files={"file": ("huge.png", data, "image/png")}), 413, "image_too_large")


def test_batch_returns_good_photos_beside_a_bad_one(client):
    good, truth = photo_file("good.jpg")
    files = [("files", good), ("files", ("bad.jpg", b"not a photo", "image/jpeg")), ("files", ("empty.jpg", b""))]
    body = client.post("/segment/batch", files=files).json()
    assert body["count"] == 3 and body["failed"] == 2
    first, bad, empty = body["results"]
    assert first["name"] == "good.jpg" and (rle.decode(first["rle"], 320, 480) == truth).mean() > 0.98
    assert (bad["name"], bad["error"], bad["status"]) == ("bad.jpg", "unsupported_image", 415)
    assert empty["error"] == "empty_file"


def test_batch_zip_of_masks_named_after_the_photos(client):
    files = [("files", photo_file(f"view{i:02d}.jpg")[0]) for i in range(3)] + [("files", ("x.jpg", b"??"))]
    r = client.post("/segment/batch", params={"format": "zip"}, files=files)
    assert r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert sorted(archive.namelist()) == ["errors.json", "view00_mask.png", "view01_mask.png", "view02_mask.png"]
    assert json.loads(archive.read("errors.json"))[0]["name"] == "x.jpg"
    assert Image.open(io.BytesIO(archive.read("view01_mask.png"))).size == (480, 320)


def test_batch_over_the_file_limit(client):
    files = [("files", photo_file(f"{i}.jpg")[0]) for i in range(5)]
    expect_error(client.post("/segment/batch", files=files), 413, "too_many_files")


def test_metrics_count_requests_by_endpoint_status_and_model(client):
    client.post("/segment", files={"file": ("e.jpg", b"")})
    client.post("/segment", files={"file": photo_file()[0]})
    text = client.get("/metrics").text
    assert 'carmask_requests_total{endpoint="/segment",model="red",status="400"}' in text
    assert 'carmask_stage_seconds_count{model="red",stage="model"}' in text
    assert 'carmask_photos_total{model="red"}' in text and "carmask_requests_in_flight" in text


def test_concurrent_requests_share_the_session(client):
    from concurrent.futures import ThreadPoolExecutor

    file, truth = photo_file()
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: client.post("/segment", files={"file": file}), range(8)))
    assert all(r.status_code == 200 and agreement(r.content, truth) > 0.98 for r in responses)


def test_missing_model_stops_start_up(tmp_path):
    app = create_app(settings(tmp_path / "nope.json"))
    with pytest.raises(ManifestError, match="not found"), TestClient(app):
        pass


def test_manifest_hash_mismatch_stops_start_up(red_model, tmp_path):
    copy = tmp_path / "red.json"
    copy.write_text(red_model.read_text())
    (tmp_path / "red.onnx").write_bytes(red_model.with_suffix(".onnx").read_bytes())
    rewrite_manifest(copy, sha256="0" * 64)
    with pytest.raises(ManifestError, match="sha256"), TestClient(create_app(settings(copy))):
        pass


def test_service_never_imports_tensorflow():
    import subprocess
    import sys

    code = "import sys, service.app; print(sorted({'tensorflow', 'keras', 'tf2onnx'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_letterboxing_model_answers_portrait_photos_at_their_size(tmp_path):
    """The service crops a letterboxed photo's padding off: the mask lines up at full size and at model size."""
    model = make_red_model(tmp_path, size=64, aspect_range=[1.0, 1.8])
    with TestClient(create_app(settings(model, max_upload_bytes=2_000_000))) as c:
        file, truth = photo_file(size=(240, 480), fmt="PNG", mime="image/png")
        full = c.post("/segment", files={"file": file})
        assert full.status_code == 200 and agreement(full.content, truth) > 0.99
        small = c.post("/segment", params={"size": "model"}, files={"file": file})
        assert Image.open(io.BytesIO(small.content)).size == (32, 64)  # the photo's part of the 64x64 input
