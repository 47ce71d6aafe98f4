"""Bounded admission: a few photos may wait for a worker; beyond that, an immediate 503 with Retry-After.

Like Triton's queue policy or BentoML's max concurrency: under overload, the requests the service accepts
keep a bounded latency and the rest learn at once to come back later, instead of every request queueing
without bound. The bound is per model, so a flood on one model cannot fill the queue of another; workers
are shared, first come first served. A request that waits past its deadline gets 503, one whose work
finishes past it gets 504: either way no one is sent an answer they stopped waiting for.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from urllib.parse import parse_qs

import anyio
import anyio.to_thread

from service.errors import APIError, send_error


class Admission:
    def __init__(self, workers: int, max_waiting: int, timeout: float):
        self.limiter = anyio.CapacityLimiter(workers)
        self.workers, self.max_waiting, self.timeout = workers, max_waiting, timeout
        self.waiting: dict[str, int] = defaultdict(int)  # photos waiting for a worker, per model
        self.seconds_per_photo = 0.05  # running estimate, for Retry-After

    def retry_after(self, model: str) -> int:
        """Seconds until the queue ahead would have drained, at least 1."""
        queued = self.waiting[model] + self.limiter.borrowed_tokens
        return max(1, math.ceil(queued * self.seconds_per_photo / self.workers))

    def full(self, model: str, photos: int = 1) -> bool:
        """Whether `photos` more for `model` would be refused now."""
        waiting = self.waiting[model]
        return self.limiter.available_tokens == 0 and waiting > 0 and waiting + photos > self.max_waiting

    def _refuse(self, model: str, code: str, detail: str) -> APIError:
        return APIError(503, code, detail, headers={"Retry-After": str(self.retry_after(model))})

    def overloaded(self, model: str) -> APIError:
        detail = f"{self.waiting[model]} photo(s) already wait for {model!r}; retry later"
        return self._refuse(model, "overloaded", detail)

    async def run(self, model: str, photos: int, started: float, fn, *args):
        """Run `fn(*args)` in a worker thread once admitted; `started` is the request's arrival (monotonic)."""
        if self.full(model, photos):
            raise self.overloaded(model)
        self.waiting[model] += photos
        try:
            with anyio.fail_after(max(0.0, started + self.timeout - time.monotonic())):
                await self.limiter.acquire()
        except TimeoutError:
            raise self._refuse(model, "queue_timeout", f"no worker was free within {self.timeout:g} s") from None
        finally:
            self.waiting[model] -= photos
        try:
            begun = time.monotonic()
            result = await anyio.to_thread.run_sync(fn, *args)
            spent = (time.monotonic() - begun) / max(1, photos)
            self.seconds_per_photo = 0.8 * self.seconds_per_photo + 0.2 * spent
        finally:
            self.limiter.release()
        if time.monotonic() - started > self.timeout:
            raise APIError(504, "deadline_exceeded", f"the answer took over {self.timeout:g} s and was dropped")
        return result


class AdmissionGate:
    """ASGI middleware: refuse a photo request with 503 before its body is parsed when its model's queue is
    full. Parsing a multipart upload costs about as much CPU as a small model call; under overload the
    refusals must be cheap, or they eat the cores the accepted requests need. (The body is still drained by
    the lingering close, which reads bytes but parses nothing.)"""

    def __init__(self, app, admission: Admission, paths: tuple[str, ...] = ("/segment", "/segment/batch")):
        self.app, self.admission, self.paths = app, admission, paths

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            model = self._model(scope)
            if model is not None and self.admission.full(model):
                scope.setdefault("state", {})["model"] = model
                err = self.admission.overloaded(model)
                headers = [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
                await send_error(send, err.status, err.code, err.detail, headers)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _model(scope) -> str | None:
        registry = getattr(scope["app"].state, "registry", None) if "app" in scope else None
        if registry is None:
            return None
        name = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("model") or [""])[0] or registry.default
        return name if name in registry.segmenters else None  # an unknown name gets its 404 further in
