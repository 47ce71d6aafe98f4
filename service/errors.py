"""One error shape for every failure: HTTP status plus `{"error": code, "detail": text}`."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from carmask.clouds.patches import CorruptPatchError, PatchError, PatchTooLargeError, UnsupportedPatchError
from carmask.imaging import ImageDecodeError, ImageTooLargeError, UnsupportedImageError

log = logging.getLogger("carmask.service")


class APIError(Exception):
    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


class BodyTooLarge(Exception):
    """Raised while a request body streams in, once it passes its byte limit."""

    def __init__(self, limit: int):
        super().__init__(f"request body is over the limit of {limit} bytes")
        self.limit = limit


def error_body(code: str, detail: str) -> dict:
    return {"error": code, "detail": detail}


async def send_error(send, status: int, code: str, detail: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """The error envelope straight onto an ASGI `send`, for middleware that answers before the app runs."""
    body = json.dumps(error_body(code, detail)).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, detail), status_code=status, headers=headers)


def classify(exc: Exception) -> APIError:
    """Map a per-photo failure to its HTTP status and code."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, ImageTooLargeError):
        return APIError(413, "image_too_large", str(exc))
    if isinstance(exc, UnsupportedImageError):
        return APIError(415, "unsupported_image", str(exc))
    if isinstance(exc, ImageDecodeError):
        return APIError(422, "corrupt_image", str(exc))
    if isinstance(exc, UnsupportedPatchError):
        return APIError(415, "unsupported_patch", str(exc))
    if isinstance(exc, PatchTooLargeError):
        return APIError(413, "patch_too_large", str(exc))
    if isinstance(exc, CorruptPatchError):
        return APIError(422, "corrupt_patch", str(exc))
    if isinstance(exc, PatchError):  # bands, size or dtype that the model's manifest does not take
        return APIError(422, "patch_mismatch", str(exc))
    log.exception("unexpected failure", exc_info=exc)
    return APIError(500, "internal_error", f"{type(exc).__name__}: {exc}")


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts) or "invalid request"


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, BodyTooLarge):  # FastAPI wraps errors raised while reading the form
            return error_response(413, "upload_too_large", str(exc.__cause__))
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)  # keeps 405's Allow

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return error_response(413, "upload_too_large", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        err = classify(exc)
        return error_response(err.status, err.code, err.detail)
