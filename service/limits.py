"""Request-body size limits enforced while the body streams in, not after, with a lingering close.

A declared Content-Length over the limit is refused at once (413) without
reading a byte; a chunked body is counted as it arrives and cut off at the
limit. Either way a too-large upload never sits whole in memory.

Lingering close (what nginx's lingering_close does): when an answer goes out
before the request body was read to its end (a 413 here, a 401 or 429 from
the key check), the rest of the body is read and thrown away, for at most
`linger_seconds` and `linger_bytes`, before the answer is finished. Clients
that write the whole body before reading (Python's http.client, many SDKs)
then read the 413 instead of a connection reset. The answer's bytes go out
first, so clients that do read early see it at once.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import BodyTooLarge, send_error


class BodySizeLimit:
    """ASGI middleware: `limit_for(path)` gives the byte limit of a request path (None: no limit)."""

    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[str], int | None],
        linger_seconds: float = 5.0,
        linger_bytes: int = 64 * 1024 * 1024,
    ):
        self.app, self.limit_for = app, limit_for
        self.linger_seconds, self.linger_bytes = linger_seconds, linger_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        body_done = scope["method"] in ("GET", "HEAD", "OPTIONS") and b"content-length" not in dict(scope["headers"])
        received = 0

        async def counting_receive() -> Message:
            nonlocal received, body_done
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if limit is not None and received > limit:
                    raise BodyTooLarge(limit)
            elif message["type"] == "http.disconnect":
                body_done = True
            return message

        async def lingering_send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body") and not body_done:
                await send({**message, "more_body": True})  # the answer's bytes go out now
                await self._drain(receive)
                await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        declared = dict(scope["headers"]).get(b"content-length")
        if limit is not None and declared is not None and declared.isdigit() and int(declared) > limit:
            detail = f"request body is over the limit of {limit} bytes"
            await send_error(lingering_send, 413, "upload_too_large", detail, [(b"connection", b"close")])
            return
        await self.app(scope, counting_receive, lingering_send)

    async def _drain(self, receive: Receive) -> None:
        """Read and discard the rest of the request body, within the time and size bounds."""
        drained = 0
        with anyio.move_on_after(self.linger_seconds):
            while drained < self.linger_bytes:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
