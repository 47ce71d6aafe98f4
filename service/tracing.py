"""Request tracing: an id on every response, where the time went, and one JSON access-log line per request.

`X-Request-ID` is echoed when the client sends a sane one, else generated, so a client, a load balancer
and this log can name the same request. Endpoints put the model's name and per-stage seconds (decode,
model, encode) into the request state; they come back as `Server-Timing` (browsers' dev tools show it)
and go into the log line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("carmask.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
STAGES = ("decode", "model", "encode")


def request_id(scope: Scope) -> str:
    sent = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
    return sent if REQUEST_ID.match(sent) else uuid.uuid4().hex


def server_timing(timings: dict[str, float], total: float) -> str:
    parts = [f"{stage};dur={timings[stage] * 1000:.1f}" for stage in STAGES if stage in timings]
    return ", ".join([*parts, f"total;dur={total * 1000:.1f}"])


class TracingMiddleware:
    def __init__(self, app: ASGIApp, log_requests: bool = True):
        self.app, self.log_requests = app, log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope)
        state = scope.setdefault("state", {})
        state.update(request_id=rid, timings={}, started=time.monotonic())
        status = 500

        async def traced_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode()))
                timing = server_timing(state["timings"], time.perf_counter() - started)
                headers.append((b"server-timing", timing.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, traced_send)
        finally:
            if self.log_requests:
                access_log.info(json.dumps(self._record(scope, state, rid, status, time.perf_counter() - started)))

    @staticmethod
    def _record(scope: Scope, state: dict, rid: str, status: int, total: float) -> dict:
        record = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "request_id": rid,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "model": state.get("model"),
            "photos": state.get("photos"),
            "ms": round(total * 1000, 1),
        }
        record.update({f"{k}_ms": round(v * 1000, 1) for k, v in state["timings"].items()})
        client = scope.get("client")
        if client:
            record["client"] = client[0]
        return record
