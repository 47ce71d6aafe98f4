"""Serving-platform behaviour: models by name, bounded admission, tracing, API keys and rate limits, GPU
requirement, lingering close, Retry-After in the client."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from carmask.client import CarmaskClient
from carmask.inference import Segmenter
from carmask.manifest import ManifestError
from service.app import create_app
from service.settings import ServiceSettings
from tests.fixtures import encode, make_red_model, red_box_photo, rewrite_manifest


def photo(size=(160, 120)) -> tuple[str, bytes, str]:
    return ("car.jpg", encode(red_box_photo(*size)[0]), "image/jpeg")


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    make_red_model(folder, name="red")
    make_red_model(folder, name="red-small", size=32)
    return folder


def test_models_by_name(two_models):
    settings = ServiceSettings(model=two_models / "red.json", models=[two_models])
    with TestClient(create_app(settings)) as client:
        listed = client.get("/models").json()
        assert listed["default"] == "red"
        assert [(m["name"], m["task"], m["default"]) for m in listed["models"]] == [
            ("red", "binary-segmentation", True),
            ("red-small", "binary-segmentation", False),
        ]
        assert client.get("/ready").json()["models"] == ["red", "red-small"]
        assert client.get("/models/red-small").json()["input"]["height"] == 32
        small = client.post("/segment", params={"model": "red-small", "size": "model"}, files={"file": photo()})
        assert small.headers["x-model"] == "red-small" and Image.open(__import__("io").BytesIO(small.content)).size == (
            32,
            32,
        )
        default = client.post("/segment", params={"size": "model"}, files={"file": photo()})
        assert default.headers["x-model"] == "red"
        batch = client.post("/segment/batch", params={"model": "red-small"}, files=[("files", photo())]).json()
        assert batch["model"] == "red-small" and batch["failed"] == 0
        for r in (
            client.get("/models/blue"),
            client.post("/segment", params={"model": "blue"}, files={"file": photo()}),
        ):
            assert r.status_code == 404 and r.json()["error"] == "unknown_model" and "red-small" in r.json()["detail"]


def test_duplicate_names_and_unknown_tasks_stop_start_up(tmp_path):
    make_red_model(tmp_path / "a", name="same")
    make_red_model(tmp_path / "b", name="same")
    settings = ServiceSettings(model=tmp_path / "a" / "same.json", models=[tmp_path / "b"])
    with pytest.raises(ManifestError, match="two manifests name the model 'same'"), TestClient(create_app(settings)):
        pass
    rewrite_manifest(tmp_path / "b" / "same.json", name="other", task="instance-segmentation")
    with pytest.raises(ManifestError, match="not served"), TestClient(create_app(settings)):
        pass


class SlowSegmenter(Segmenter):
    """The red model, `delay` seconds per call: the service's workers stay busy long enough to overflow."""

    delay = 0.3

    def outputs(self, images, glass=False):  # what every consumer calls (probabilities() included)
        time.sleep(self.delay)
        return super().outputs(images, glass)


class SlowerSegmenter(SlowSegmenter):
    """A second per call: a refusal that waited for a slot would take longer than that, whatever the load."""

    delay = 1.0


def test_overload_gets_fast_503s_with_retry_after_and_the_rest_are_served(red_model):
    settings = ServiceSettings(model=red_model, inference_workers=1, max_waiting=1, access_log=False)
    app = create_app(settings, segmenter=SlowerSegmenter(red_model))
    with TestClient(app) as client, ThreadPoolExecutor(6) as pool:

        def call(_):
            start = time.perf_counter()
            r = client.post("/segment", files={"file": photo()})
            return r, time.perf_counter() - start

        results = list(pool.map(call, range(6)))
    statuses = sorted(r.status_code for r, _ in results)
    assert statuses.count(200) >= 2 and statuses.count(503) >= 2, statuses
    for r, seconds in results:
        if r.status_code == 503:
            assert r.json()["error"] == "overloaded" and int(r.headers["retry-after"]) >= 1
            assert seconds < SlowerSegmenter.delay  # refused at once, not after waiting for a slot


def test_deadline_gives_503_while_waiting_and_504_when_the_work_overruns(red_model):
    settings = ServiceSettings(model=red_model, inference_workers=1, max_waiting=8, request_timeout=0.2)
    with TestClient(create_app(settings, segmenter=SlowSegmenter(red_model))) as client, ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: client.post("/segment", files={"file": photo()}), range(3)))
    codes = sorted((r.status_code, r.json()["error"]) for r in results)
    assert (504, "deadline_exceeded") in codes  # the one that ran took 0.3 s > 0.2 s
    assert (503, "queue_timeout") in codes and all(
        r.headers.get("retry-after") for r in results if r.status_code == 503
    )


def test_request_id_server_timing_and_a_json_access_line(red_model, caplog):
    with (
        TestClient(create_app(ServiceSettings(model=red_model))) as client,
        caplog.at_level(logging.INFO, "carmask.access"),
    ):
        sent = client.post("/segment", files={"file": photo()}, headers={"X-Request-ID": "dealer-42.a"})
        made = client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert sent.headers["x-request-id"] == "dealer-42.a"
    assert len(made.headers["x-request-id"]) == 32 and " " not in made.headers["x-request-id"]
    timing = dict(part.strip().split(";dur=") for part in sent.headers["server-timing"].split(","))
    assert {"decode", "model", "encode", "total"} <= set(timing) and float(timing["total"]) >= float(timing["model"])
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "carmask.access"]
    line = next(x for x in lines if x["request_id"] == "dealer-42.a")
    assert line["status"] == 200 and line["model"] == "red" and line["path"] == "/segment" and line["model_ms"] > 0


def test_api_keys_and_rate_limits(red_model, tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# hashes only\n{hashlib.sha256(b'from-file').hexdigest()} partner\n")
    settings = ServiceSettings(
        model=red_model, api_keys=["plain-key"], api_keys_file=keys_file, rate_limit=0.5, rate_burst=2
    )
    with TestClient(create_app(settings)) as client:
        for path in ("/health", "/ready", "/", "/docs", "/openapi.json"):
            assert client.get(path).status_code == 200, path
        refused = client.post("/segment", files={"file": photo()})
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        assert client.get("/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = client.post("/segment", files={"file": photo()}, headers={"Authorization": "Bearer plain-key"})
        assert ok.status_code == 200 and ok.headers["x-ratelimit-limit"] == "2"
        assert ok.headers["x-ratelimit-remaining"] == "1"
        assert client.get("/models", headers={"X-API-Key": "from-file"}).status_code == 200
        client.get("/models", headers={"X-API-Key": "plain-key"})  # the bucket of plain-key is now empty
        limited = client.get("/models", headers={"X-API-Key": "plain-key"})
        assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1 and limited.headers["x-ratelimit-remaining"] == "0"


def test_keys_are_off_by_default(red_model):
    with TestClient(create_app(ServiceSettings(model=red_model))) as client:
        r = client.post("/segment", files={"file": photo()})
        assert r.status_code == 200 and "x-ratelimit-limit" not in r.headers


def test_require_gpu_stops_start_up_with_one_clear_line(red_model, monkeypatch):
    settings = ServiceSettings(model=red_model, require_gpu=True)
    with (
        pytest.raises(RuntimeError, match=r"CARMASK_REQUIRE_GPU is set but .* run on the CPU"),
        TestClient(create_app(settings)),
    ):
        pass
    from service.__main__ import main

    monkeypatch.setenv("CARMASK_REQUIRE_GPU", "true")
    monkeypatch.setenv("CARMASK_MODEL", str(red_model))
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert "CARMASK_REQUIRE_GPU is set" in str(exit_info.value) and "\n" not in str(exit_info.value)


def test_a_client_that_writes_the_whole_body_first_reads_the_413(server):
    """http.client sends all 30 MB before reading; without a lingering close it gets a reset, not the 413."""
    _, port = server  # the fixture's limit is 1,000,000 bytes
    body = (
        b"--x\r\nContent-Disposition: form-data; name=file; filename=a.jpg\r\n\r\n"
        + b"\0" * 30_000_000
        + b"\r\n--x--\r\n"
    )
    for _ in range(3):  # the timing race that lost the 413 is not a one-off
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/segment", body=body, headers={"Content-Type": "multipart/form-data; boundary=x"})
        reply = conn.getresponse()
        assert reply.status == 413 and json.loads(reply.read())["error"] == "upload_too_large"
        conn.close()


def test_client_waits_as_long_as_retry_after_asks(monkeypatch):
    from tests.test_client import FakeService

    fake = FakeService([(503, {"error": "overloaded", "detail": "busy"}), (200, {"results": []})])
    fake.headers = {"Retry-After": "2"}
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    try:
        with CarmaskClient(fake.url, backoff=0.01) as client:
            client.segment_batch([b"x"])
    finally:
        fake.close()
    assert slept == [2.0]


def test_burst_of_clients_never_sees_connection_errors(server):
    url, _ = server
    data = photo()[1]
    errors, statuses = [], []

    def post():
        try:
            with CarmaskClient(url, retries=0) as client:
                client.segment(data)
                statuses.append(200)
        except Exception as exc:  # noqa: BLE001 - counted
            errors.append(type(exc).__name__)

    threads = [threading.Thread(target=post) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(e in ("ServiceUnavailable",) for e in errors), errors  # 503s, never resets
    assert statuses, "some requests must be served"


def test_batch_parts_without_a_filename_are_photos_too(red_model):
    """Some clients send file parts without a filename; Starlette hands those over as text."""
    image, truth = red_box_photo(120, 90)
    data = encode(image, "PNG")
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=files\r\nContent-Type: image/png\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with TestClient(create_app(ServiceSettings(model=red_model))) as client:
        r = client.post(
            "/segment/batch", content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
    assert r.status_code == 200, r.text
    (entry,) = r.json()["results"]
    assert (entry["width"], entry["height"]) == (120, 90) and abs(entry["coverage"] - truth.mean()) < 0.02
