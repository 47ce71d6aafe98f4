"""Prometheus metrics by model: requests by endpoint and status, latency, time per stage, photos, in flight."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from starlette.types import ASGIApp, Message, Receive, Scope, Send

disable_created_metrics()  # the *_created series only add noise to dashboards
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServiceMetrics:
    """One registry per app, so several apps (tests) never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "carmask_requests_total", "HTTP requests", ["endpoint", "status", "model"], registry=self.registry
        )
        self.latency = Histogram(
            "carmask_request_seconds",
            "HTTP request latency",
            ["endpoint", "model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "carmask_stage_seconds",
            "Time per request in each stage (decode, model, refine, encode)",
            ["model", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.photos = Counter("carmask_photos_total", "Photos segmented", ["model"], registry=self.registry)
        self.in_flight = Gauge("carmask_requests_in_flight", "Requests being served", registry=self.registry)

    def record_photos(self, model: str, count: int, timings: dict[str, float]) -> None:
        self.photos.labels(model).inc(count)
        for stage, seconds in timings.items():
            self.stage_seconds.labels(model, stage).observe(seconds)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (not the raw path)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            model = scope.get("state", {}).get("model") or ""
            self.metrics.requests.labels(endpoint, str(status), model).inc()
            self.metrics.latency.labels(endpoint, model).observe(time.perf_counter() - start)
