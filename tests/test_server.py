"""The service as users run it: a real uvicorn process on 127.0.0.1 (the `server` fixture)."""

import os
import select
import socket
import subprocess
import sys

import httpx

from carmask import rle
from tests.fixtures import encode, red_box_photo


def read_reply(sock: socket.socket) -> str:
    """One whole HTTP/1.1 response (headers and Content-Length body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += sock.recv(4096)
    return (head + b"\r\n\r\n" + body).decode()


def test_segment_over_http(server):
    url, _ = server
    image, truth = red_box_photo(640, 480)
    r = httpx.post(url + "/segment", params={"format": "rle"}, files={"file": ("car.jpg", encode(image))}, timeout=30)
    assert r.status_code == 200
    assert (rle.decode(r.json()["rle"], 480, 640) == truth).mean() > 0.98
    assert httpx.get(url + "/ready").json()["provider"] == "CPUExecutionProvider"


def test_declared_oversize_body_is_refused_before_it_is_sent(server):
    _, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /segment HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 50000000\r\n\r\n"
        )
        reply = read_reply(sock)  # no body byte was sent: the server answers from the headers
    assert reply.startswith("HTTP/1.1 413") and "upload_too_large" in reply


def test_chunked_oversize_body_is_cut_off(server):
    """A body with no Content-Length is answered with 413 once it passes the limit, not after it ends."""
    _, port = server
    total, sent = 160 * 65536, 0  # 10 MB against a 1 MB limit
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /segment HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
        chunk = b"x" * 65536
        while sent < total and not select.select([sock], [], [], 0.01)[0]:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                break  # the server closed the connection
            sent += len(chunk)
        reply = read_reply(sock)
    assert reply.startswith("HTTP/1.1 413") and "upload_too_large" in reply
    assert sent < total / 2


def test_service_keeps_serving_after_bad_requests(server):
    url, _ = server
    for _ in range(3):
        assert httpx.post(url + "/segment", files={"file": ("x.jpg", b"junk")}).status_code == 415
    image, _ = red_box_photo(100, 80)
    assert httpx.post(url + "/segment", files={"file": ("ok.jpg", encode(image))}).status_code == 200


def test_serve_refuses_to_start_without_its_model(tmp_path):
    env = {**os.environ, "CARMASK_MODEL": str(tmp_path / "missing.json")}
    result = subprocess.run(
        [sys.executable, "-m", "service", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == f"carmask-serve: model manifest not found: {tmp_path}/missing.json"
