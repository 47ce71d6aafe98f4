"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tests.fixtures import make_red_model

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "carvana"
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "carmask-unet.json"

needs_real_data = pytest.mark.skipif(not (REAL_DATA / "train").is_dir(), reason="needs ../shared/data/carvana")


@pytest.fixture(scope="session")
def red_model(tmp_path_factory) -> Path:
    return make_red_model(tmp_path_factory.mktemp("models"))
