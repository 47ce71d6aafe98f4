"""Optional API keys and per-key rate limits (off unless keys are configured).

Keys arrive as `Authorization: Bearer <key>` or `X-API-Key: <key>` and are compared by their SHA-256, so a
key file need only hold hashes. Each key has a token bucket (`rate_limit` requests per second, `rate_burst`
at once): past it, 429 with Retry-After. Every keyed answer says where the bucket stands
(X-RateLimit-Limit / -Remaining / -Reset, as remove.bg and GitHub do). Liveness, readiness, the page and
the API description stay open, so orchestrators and people can still find their way.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import send_error

OPEN_PATHS = ("/health", "/ready", "/", "/docs", "/openapi.json", "/favicon.ico")
OPEN_PREFIXES = ("/static/",)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_key_hashes(keys: list[str], key_file: Path | None) -> list[str]:
    """Plain keys and `sha256:<hex>` entries from the setting, `<hex> [label]` lines from the file."""
    hashes = [k.removeprefix("sha256:") if k.startswith("sha256:") else key_hash(k) for k in keys if k]
    if key_file is not None:
        for line in Path(key_file).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                digest = line.split()[0].removeprefix("sha256:")
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
                    raise ValueError(f"{key_file}: {digest[:12]}... is not a SHA-256 hex digest")
                hashes.append(digest.lower())
    return hashes


@dataclass
class Bucket:
    tokens: float
    updated: float


class KeyAuth:
    """ASGI middleware; with no keys configured it passes everything through untouched."""

    def __init__(self, app: ASGIApp, hashes: list[str], rate: float = 0.0, burst: int = 10):
        self.app, self.hashes, self.rate, self.burst = app, hashes, rate, max(1, burst)
        self.buckets: dict[str, Bucket] = {}

    def _key(self, scope: Scope) -> str | None:
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        api_key = headers.get(b"x-api-key")
        return api_key.decode("latin-1").strip() if api_key else None

    def _take(self, digest: str) -> tuple[bool, Bucket]:
        now = time.monotonic()
        bucket = self.buckets.setdefault(digest, Bucket(float(self.burst), now))
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True, bucket
        return False, bucket

    def _limit_headers(self, bucket: Bucket) -> list[tuple[bytes, bytes]]:
        reset = math.ceil((self.burst - bucket.tokens) / self.rate) if self.rate else 0
        return [
            (b"x-ratelimit-limit", str(self.burst).encode()),
            (b"x-ratelimit-remaining", str(int(bucket.tokens)).encode()),
            (b"x-ratelimit-reset", str(reset).encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if not self.hashes or scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        key = self._key(scope)
        digest = key_hash(key) if key else ""
        if not key or not any(hmac.compare_digest(digest, h) for h in self.hashes):
            detail = "a valid API key is required (Authorization: Bearer <key> or X-API-Key: <key>)"
            await send_error(send, 401, "unauthorized", detail, [(b"www-authenticate", b"Bearer")])
            return
        if not self.rate:
            await self.app(scope, receive, send)
            return
        allowed, bucket = self._take(digest)
        headers = self._limit_headers(bucket)
        if not allowed:
            wait = math.ceil((1 - bucket.tokens) / self.rate)
            detail = f"over {self.rate:g} requests per second for this key; retry in {wait} s"
            await send_error(send, 429, "rate_limited", detail, [*headers, (b"retry-after", str(wait).encode())])
            return

        async def limited_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, limited_send)
