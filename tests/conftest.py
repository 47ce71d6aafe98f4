"""Shared pytest fixtures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tests.fixtures import make_glass_model, make_red_model

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "carvana"
V2_MODEL = Path(__file__).resolve().parents[1] / "models" / "carmask-v2.json"  # the default
SHIPPED_MODEL = V2_MODEL
V1_MODEL = Path(__file__).resolve().parents[1] / "models" / "carmask-unet.json"  # served by name

needs_real_data = pytest.mark.skipif(not (REAL_DATA / "train").is_dir(), reason="needs ../shared/data/carvana")


@pytest.fixture(scope="session")
def red_model(tmp_path_factory) -> Path:
    return make_red_model(tmp_path_factory.mktemp("models"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(red_model):
    """A real `python -m service` process on a free 127.0.0.1 port, serving the red test model."""
    yield from serve(red_model)


@pytest.fixture(scope="session")
def glass_server(tmp_path_factory):
    """The same, serving a model with a glass output (tests.fixtures.make_glass_model)."""
    yield from serve(make_glass_model(tmp_path_factory.mktemp("glass-model")))


def serve(model: Path):
    port = free_port()
    env = {
        **os.environ,
        "CARMASK_MODEL": str(model),
        "CARMASK_MAX_UPLOAD_BYTES": "1000000",
        "CARMASK_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"server exited: {proc.stdout.read().decode()}")
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("server did not become ready")
    yield url, port
    proc.terminate()
    proc.wait(timeout=10)
