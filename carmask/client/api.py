"""HTTP calls to the service with timeouts and retries.

Retries with exponential backoff on connection errors, timeouts and 5xx
answers (segmentation is idempotent, so a repeat is safe); never on 4xx,
which say the request itself is wrong and would fail again, except 429 (rate
limited). A 503 or 429 with Retry-After is retried after the time the
service asks for (capped at `max_retry_after`), not sooner.
"""

from __future__ import annotations

import io
import os
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from carmask import rle

DEFAULT_URL = "http://127.0.0.1:8000"


class ClientError(Exception):
    """The service refused the request (4xx); `code` and `detail` come from its JSON error."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


class ServiceUnavailable(Exception):
    """No good answer after all retries (connection errors or 5xx)."""


def _photo(item: str | Path | bytes, name: str | None = None) -> tuple[str, bytes]:
    if isinstance(item, bytes | bytearray):
        return name or "photo", bytes(item)
    path = Path(item)
    return path.name, path.read_bytes()


def _client_error(response: httpx.Response) -> ClientError:
    try:
        body = response.json()
        return ClientError(response.status_code, body.get("error", "error"), body.get("detail", response.text))
    except ValueError:
        return ClientError(response.status_code, "error", response.text[:200])


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class CarmaskClient:
    def __init__(
        self,
        url: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        api_key: str | None = None,
        max_retry_after: float = 60.0,
    ):
        self.url = (url or os.environ.get("CARMASK_URL") or DEFAULT_URL).rstrip("/")
        self.retries, self.backoff, self.max_retry_after = retries, backoff, max_retry_after
        api_key = api_key or os.environ.get("CARMASK_API_KEY")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport, headers=headers)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> CarmaskClient:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def _post(self, path: str, files: list[tuple[str, tuple[str, bytes]]], params: dict) -> httpx.Response:
        last: Exception | None = None
        wait: float | None = None  # what the service asked for, if it did
        for attempt in range(self.retries + 1):
            if attempt:
                backoff = self.backoff * 2 ** (attempt - 1)
                time.sleep(min(self.max_retry_after, wait) if wait is not None else backoff)
            try:
                response = self.http.post(path, files=files, params=params)
            except httpx.TransportError as exc:  # refused, reset, timed out: worth another try
                last, wait = exc, None
                continue
            if response.status_code >= 500 or response.status_code == 429:
                last = ServiceUnavailable(f"{response.status_code} from {path}: {response.text[:200]}")
                wait = retry_after(response)
                continue
            if response.status_code >= 400:
                raise _client_error(response)
            return response
        raise ServiceUnavailable(f"{self.url}{path}: no answer after {self.retries + 1} tries ({last})") from last

    def ready(self) -> dict:
        return self.http.get("/ready").raise_for_status().json()

    def segment(self, photo: str | Path | bytes, format: str = "png", threshold: float | None = None, **kw) -> bytes:
        """One photo to the response body: PNG mask, RLE JSON bytes, cutout, or glass PNG (format=windows); `kw`,
        more query parameters (model, size, cars, quality, and the cutout options: windows, shadow, bg_color, crop,
        crop_margin, output, decontaminate)."""
        params = {"format": format, **({"threshold": threshold} if threshold is not None else {}), **kw}
        return self._post("/segment", [("file", _photo(photo))], params).content

    def segment_batch(
        self, photos: Sequence[str | Path | bytes], format: str = "json", threshold: float | None = None, **kw
    ) -> list[dict] | dict[str, bytes]:
        """A set of photos in one request: RLE entries (json) or {file name: PNG bytes} (zip); `kw` as for
        `segment`."""
        files = [("files", _photo(p, f"photo{i}")) for i, p in enumerate(photos)]
        params = {"format": format, **({"threshold": threshold} if threshold is not None else {}), **kw}
        response = self._post("/segment/batch", files, params)
        if format == "json":
            return response.json()["results"]
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}

    def mask(self, photo: str | Path | bytes, threshold: float | None = None) -> np.ndarray:
        """The (H, W) 0/1 mask of one photo."""
        png = self.segment(photo, "png", threshold)
        return (np.asarray(Image.open(io.BytesIO(png))) > 0).astype(np.uint8)

    def masks(self, photos: Sequence[str | Path | bytes], threshold: float | None = None) -> list[np.ndarray | None]:
        """Masks for a set of photos in one batch request; None where a photo failed."""
        entries = self.segment_batch(photos, "json", threshold)
        return [None if "error" in e else rle.decode(e["rle"], e["height"], e["width"]) for e in entries]
