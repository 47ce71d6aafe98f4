"""Helpers shared by the benchmark scripts: test photos and a service process on 127.0.0.1."""

from __future__ import annotations

import io
import os
import platform
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TEST_PHOTOS = ROOT.parent / "shared" / "data" / "carvana" / "test"


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def test_photos(count: int = 32) -> list[tuple[str, bytes]]:
    """The Carvana test photos when present, else generated 1918x1280 JPEGs."""
    if TEST_PHOTOS.is_dir():
        paths = sorted(TEST_PHOTOS.glob("*.jpg"))[:count]
        return [(p.name, p.read_bytes()) for p in paths]
    rng = np.random.default_rng(0)
    photos = []
    for i in range(count):
        arr = np.full((1280, 1918, 3), 200, np.uint8)
        arr[400:1000, 300:1600] = rng.integers(0, 255, 3)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=90)
        photos.append((f"generated_{i:02d}.jpg", buf.getvalue()))
    return photos


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class ServiceURL(str):
    """The URL of a running service; `.pid` is its process."""

    pid: int


@contextmanager
def running_service(env: dict[str, str] | None = None, port: int | None = None):
    """`python -m service` on 127.0.0.1; yields its URL (with `.pid`) once /ready answers."""
    import httpx

    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "CARMASK_LOG_LEVEL": "warning", **(env or {})},
    )
    url = ServiceURL(f"http://127.0.0.1:{port}")
    url.pid = proc.pid
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError("service did not become ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
