"""The OpenAPI document is a true contract: Schemathesis, every built-in check, against the app in-process.

Photos are generated as real images (a file field's bytes can be any "binary" per the schema, but only a
photo is a valid photo; the error paths for non-photos are tested elsewhere). A second test breaks the app
on purpose and expects Schemathesis to notice, so this test cannot pass by checking nothing.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis.checks import positive_data_acceptance

from service.app import create_app
from service.settings import ServiceSettings
from tests.fixtures import make_glass_model


def _photo(width: int, height: int, red: int, fmt: str) -> bytes:
    image = Image.new("RGB", (width, height), (120, 120, 120))
    image.paste((red, 20, 20), (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


PHOTOS = st.builds(
    _photo, st.integers(8, 96), st.integers(8, 96), st.integers(0, 255), st.sampled_from(["JPEG", "PNG", "WEBP"])
)
schemathesis.openapi.media_type("image/*", PHOTOS)
schemathesis.openapi.format("binary", PHOTOS)


# Built at import: Schemathesis parametrizes at collection time (its lazy fixture loader fails on pytest 9).
MODEL = make_glass_model(Path(tempfile.mkdtemp(prefix="carmask-contract-")))  # a car model with a glass output
APP = create_app(ServiceSettings(model=MODEL, access_log=False))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def api_app():
    with TestClient(APP):  # runs the lifespan: models loaded for every generated request
        yield APP


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_contract(case):
    case.call_and_validate(excluded_checks=cross_field_rules(case))


def cross_field_rules(case) -> list:
    """One rule the schema cannot say (query parameters have no dependencies in OpenAPI), documented in the
    parameter's description: output=jpeg needs an opaque bg_color, else 422. Only there may a request the
    schema allows be refused; every other check still runs on it."""
    query = case.query or {}
    colour = str(query.get("bg_color") or "")
    opaque = len(colour.lstrip("#")) == 6 or colour.lower().endswith("ff")
    if query.get("format") == "cutout" and query.get("output") == "jpeg" and not opaque:
        return [positive_data_acceptance]
    return []


def test_a_broken_answer_fails_the_contract(api_app):
    """An undocumented body on /health must be caught: the check above can fail."""
    broken = create_app(ServiceSettings(model=api_app.state.settings.model, access_log=False))
    broken.router.routes = [r for r in broken.router.routes if getattr(r, "path", None) != "/health"]

    @broken.get("/health", response_model=None)
    async def health_broken():
        return JSONResponse({"unexpected": True}, status_code=200)

    broken.openapi_schema = api_app.openapi()  # the contract the real app publishes
    with TestClient(broken):
        operation = schemathesis.openapi.from_asgi("/openapi.json", broken)["/health"]["GET"]
        case = operation.Case()
        with pytest.raises(BaseExceptionGroup) as failures:  # schemathesis FailureGroup
            case.call_and_validate()
        assert any("violates schema" in str(e) for e in failures.value.exceptions)
