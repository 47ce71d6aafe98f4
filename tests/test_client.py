"""The batch client against a real service on 127.0.0.1 and a fake one that fails on purpose."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from carmask import rle
from carmask.client import CarmaskClient, ClientError, ServiceUnavailable
from carmask.client.cli import main as client_main
from carmask.client.jobs import segment_paths
from carmask.client.submission import check_submission, make_submission, offline_rle, service_rle
from carmask.inference import Segmenter
from tests.fixtures import red_box_photo


class FakeService:
    """An HTTP server on 127.0.0.1 answering each POST with the next of `replies` (status, JSON body)."""

    def __init__(self, replies):
        self.replies, self.calls, self.headers = list(replies), 0, {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                owner.calls += 1
                status, body = owner.replies[min(owner.calls, len(owner.replies)) - 1]
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in owner.headers.items() if status >= 500 else ():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def make_sets(root, cars=2, views=3):
    truths = {}
    for car in range(cars):
        folder = root / f"car{car}"
        folder.mkdir(parents=True)
        for view in range(views):
            image, mask = red_box_photo(160 + 16 * view, 120, box=(0.2, 0.2 + 0.05 * car, 0.7, 0.8))
            image.save(folder / f"view{view:02d}.jpg", quality=95)
            truths[f"car{car}/view{view:02d}"] = mask
    return truths


def test_python_api_masks_and_batch(server, tmp_path):
    url, _ = server
    image, truth = red_box_photo(200, 150)
    image.save(tmp_path / "a.jpg", quality=95)
    with CarmaskClient(url) as client:
        assert (client.mask(tmp_path / "a.jpg") == truth).mean() > 0.98
        masks = client.masks([tmp_path / "a.jpg", b"not an image"])
        assert (masks[0] == truth).mean() > 0.98 and masks[1] is None
        with pytest.raises(ClientError) as err:
            client.segment(b"")
        assert err.value.status == 400 and err.value.code == "empty_file"


def test_folder_of_sets_is_mirrored_and_resumes_after_interruption(server, tmp_path):
    url, _ = server
    truths = make_sets(tmp_path / "in")
    out = tmp_path / "out"
    # First run: the service "dies" after one set (every later request gets 503): a partial job.
    fake = FakeService([(503, {"error": "down"})])
    with CarmaskClient(url, retries=0) as good:
        first = segment_paths(good, [str(tmp_path / "in" / "car0")], out / "car0", set_size=16, progress=False)
    with CarmaskClient(fake.url, retries=1, backoff=0.01) as down:
        interrupted = segment_paths(down, [str(tmp_path / "in")], out, set_size=16, progress=False)
    fake.close()
    assert first.done == 3 and interrupted.skipped == 3 and len(interrupted.failed) == 3
    # Rerun against the real service: only the missing set is done.
    with CarmaskClient(url) as client:
        rerun = segment_paths(client, [str(tmp_path / "in")], out, set_size=16, progress=False)
    assert (rerun.done, rerun.skipped, rerun.failed) == (3, 3, {})
    for key, truth in truths.items():
        mask = np.asarray(Image.open(out / f"{key}_mask.png")) > 0
        assert (mask == truth.astype(bool)).mean() > 0.97
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no partial files


def test_corrupt_photo_is_reported_without_stopping_the_run(server, tmp_path):
    url, _ = server
    make_sets(tmp_path / "in", cars=1)
    (tmp_path / "in" / "car0" / "broken.jpg").write_bytes(b"\xff\xd8 broken")
    code = client_main(["segment", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--url", url, "--quiet"])
    assert code == 1
    assert len(list((tmp_path / "out").rglob("*_mask.png"))) == 3
    assert not (tmp_path / "out" / "car0" / "broken_mask.png").exists()


def test_rle_and_cutout_formats(server, tmp_path):
    url, _ = server
    truths = make_sets(tmp_path / "in", cars=1, views=2)
    for fmt in ("rle", "cutout"):
        code = client_main(
            ["segment", str(tmp_path / "in"), "--out", str(tmp_path / fmt), "--url", url, "--format", fmt, "--quiet"]
        )
        assert code == 0
    entry = json.loads((tmp_path / "rle" / "car0" / "view01_mask.json").read_text())
    assert (rle.decode(entry["rle"], entry["height"], entry["width"]) == truths["car0/view01"]).mean() > 0.97
    assert Image.open(tmp_path / "cutout" / "car0" / "view00_cutout.png").mode == "RGBA"


def test_retries_on_5xx_then_succeeds(tmp_path):
    ok = {"results": [{"name": "a.jpg", "width": 4, "height": 2, "rle": "2 3", "coverage": 0.375}]}
    fake = FakeService([(503, {"error": "busy"}), (500, {"error": "oops"}), (200, ok)])
    (tmp_path / "a.jpg").write_bytes(b"anything")
    with CarmaskClient(fake.url, retries=3, backoff=0.01) as client:
        summary = segment_paths(client, [str(tmp_path / "a.jpg")], tmp_path / "out", progress=False)
    fake.close()
    assert fake.calls == 3 and summary.done == 1
    mask = np.asarray(Image.open(tmp_path / "out" / "a_mask.png"))
    assert mask.tolist() == [[0, 255, 255, 255], [0, 0, 0, 0]]


def test_gives_up_after_the_retries(tmp_path):
    fake = FakeService([(502, {"error": "bad gateway"})])
    with CarmaskClient(fake.url, retries=2, backoff=0.01) as client, pytest.raises(ServiceUnavailable):
        client.segment(b"x")
    fake.close()
    assert fake.calls == 3


def test_never_retries_a_4xx(tmp_path):
    fake = FakeService([(415, {"error": "unsupported_image", "detail": "nope"})])
    (tmp_path / "a.jpg").write_bytes(b"x")
    with CarmaskClient(fake.url, retries=5, backoff=0.01) as client:
        summary = segment_paths(client, [str(tmp_path / "a.jpg")], tmp_path / "out", progress=False)
    fake.close()
    assert fake.calls == 1
    assert "unsupported_image" in summary.failed[str(tmp_path / "a.jpg")]


def test_connection_refused_is_retried_then_reported(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    (tmp_path / "a.jpg").write_bytes(b"x")
    with CarmaskClient(f"http://127.0.0.1:{port}", retries=1, backoff=0.01) as client:
        summary = segment_paths(client, [str(tmp_path / "a.jpg")], tmp_path / "out", progress=False)
    assert "no answer after 2 tries" in summary.failed[str(tmp_path / "a.jpg")]


def kaggle_like(tmp_path, names):
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    truths = {}
    for i, name in enumerate(names):
        image, mask = red_box_photo(1918, 1280, box=(0.2 + 0.05 * i, 0.3, 0.7, 0.8))
        image.save(test_dir / name, quality=90)
        truths[name] = mask
    sample = tmp_path / "sample_submission.csv"
    rows = ["img,rle_mask", *[f"{n},1 1" for n in ["zzz_01.jpg", *names, "aaa_16.jpg"]]]
    sample.write_text("\n".join(rows) + "\n")
    return test_dir, sample, truths


def test_submission_through_the_service_is_valid_and_decodes_to_the_masks(server, tmp_path):
    url, _ = server
    test_dir, sample, truths = kaggle_like(tmp_path, ["0ab_01.jpg", "0ab_02.jpg"])
    out = tmp_path / "submission.csv"
    with CarmaskClient(url) as client:
        report = make_submission(test_dir, sample, out, service_rle(client), progress=False)
    assert report.problems == [] and report.failed == {}
    assert report.missing == ["zzz_01.jpg", "aaa_16.jpg"] and report.predicted == 2
    lines = out.read_text().splitlines()
    assert lines[0] == "img,rle_mask" and [line.split(",")[0] for line in lines[1:]] == [
        "zzz_01.jpg",
        "0ab_01.jpg",
        "0ab_02.jpg",
        "aaa_16.jpg",
    ]
    for line in lines[2:4]:
        name, text = line.split(",")
        assert (rle.decode(text, 1280, 1918) == truths[name]).mean() > 0.99
    assert check_submission(out, sample) == []


def test_offline_submission_resumes_and_matches_the_service(server, red_model, tmp_path):
    url, _ = server
    test_dir, sample, _ = kaggle_like(tmp_path, ["0ab_01.jpg", "0ab_02.jpg"])
    out = tmp_path / "offline.csv"
    parts = tmp_path / "offline.csv.parts.jsonl"
    parts.write_text(json.dumps({"img": "0ab_01.jpg", "rle_mask": "5 5"}) + "\n{broken li")  # an interrupted run
    report = make_submission(test_dir, sample, out, offline_rle(Segmenter(red_model)), progress=False)
    assert report.resumed == 1 and report.predicted == 2 and not parts.exists()
    rows = dict(line.split(",") for line in out.read_text().splitlines()[1:])
    assert rows["0ab_01.jpg"] == "5 5"  # kept from the earlier run, not redone
    with CarmaskClient(url) as client:
        served = service_rle(client)([test_dir / "0ab_02.jpg"])
    assert served["0ab_02.jpg"] == rows["0ab_02.jpg"]  # one pipeline, offline or served


def test_check_submission_finds_problems(tmp_path):
    sample = tmp_path / "sample.csv"
    sample.write_text("img,rle_mask\na.jpg,1 1\nb.jpg,1 1\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("img,mask\na.jpg,1 2 3\n")
    problems = check_submission(bad, sample)
    assert any("header" in p for p in problems)
    assert any("1 missing" in p for p in problems)
    assert any("a.jpg" in p and "even number" in p for p in problems)
