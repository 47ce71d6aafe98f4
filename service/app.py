"""The FastAPI application: `uvicorn service.app:app` serves the shipped model.

One `Segmenter` (ONNX session) is created at start-up and shared by every
request; the per-photo work runs in worker threads, never on the event loop.
`/` is a page for people (service/static/), `/docs` the OpenAPI UI, both served
from this process: nothing is loaded from a CDN, so they work offline.
"""

from __future__ import annotations

import importlib.resources
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from carmask import __version__
from carmask.inference import Segmenter
from carmask.outputs import coverage
from service import pipeline
from service.errors import APIError, classify, install_handlers
from service.limits import BodySizeLimit
from service.metrics import MetricsMiddleware, ServiceMetrics
from service.pipeline import BatchFormat, MaskFormat, MaskSize
from service.settings import ServiceSettings

log = logging.getLogger("carmask.service")
MULTIPART_SLACK = 64 * 1024  # room for multipart headers around one photo
STATIC = Path(__file__).resolve().parent / "static"
SWAGGER_UI = Path(str(importlib.resources.files("fastapi_offline") / "static"))  # swagger-ui-bundle.js, .css

Threshold = Annotated[float | None, Query(ge=0.0, le=1.0, description="probability threshold (default: the model's)")]


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The bytes of one uploaded photo; 413 over `limit`, 400 when empty."""
    if upload.size is not None and upload.size > limit:
        raise APIError(413, "upload_too_large", f"{upload.filename}: {upload.size} bytes, over the limit of {limit}")
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise APIError(413, "upload_too_large", f"{upload.filename}: over the limit of {limit} bytes")
    if not data:
        raise APIError(400, "empty_file", f"{upload.filename or 'file'}: the upload is empty")
    return data


def create_app(settings: ServiceSettings | None = None, segmenter: Segmenter | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    metrics = ServiceMetrics()
    limiter = anyio.CapacityLimiter(settings.inference_workers)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Start-up: a missing model or a manifest that does not match its file stops here, loudly.
        app.state.segmenter = segmenter or Segmenter(
            settings.model, settings.providers or None, settings.threads, settings.flip_tta
        )
        seg = app.state.segmenter
        log.info("serving %s v%s on %s", seg.manifest.name, seg.manifest.version, seg.provider)
        yield
        app.state.segmenter = None

    app = FastAPI(
        title="carmask",
        version=__version__,
        description="Masks the car in a photo. U-Net trained on Carvana, served with ONNX Runtime.",
        lifespan=lifespan,
        docs_url=None,  # served below from local files instead of a CDN
        redoc_url=None,
    )
    app.state.settings, app.state.metrics, app.state.segmenter = settings, metrics, None
    install_handlers(app)

    def body_limit(path: str) -> int | None:
        if path == "/segment":
            return settings.max_upload_bytes + MULTIPART_SLACK
        if path == "/segment/batch":
            return settings.max_batch_bytes
        return None

    app.add_middleware(BodySizeLimit, limit_for=body_limit)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    def ready_segmenter(request: Request) -> Segmenter:
        seg = request.app.state.segmenter
        if seg is None:
            raise APIError(503, "not_ready", "the model is not loaded")
        return seg

    async def in_worker(fn, *args):
        return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)

    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_UI), name="swagger")  # before /static
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + app.openapi_url,
            title="carmask API",
            swagger_js_url=root + "/static/swagger/swagger-ui-bundle.js",
            swagger_css_url=root + "/static/swagger/swagger-ui.css",
            swagger_favicon_url=root + "/static/swagger/favicon.png",
        )

    @app.get("/health", summary="Liveness: the process is up")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: the model is loaded")
    async def ready(request: Request):
        seg = request.app.state.segmenter
        if seg is None:
            return JSONResponse({"error": "not_ready", "detail": "the model is not loaded"}, status_code=503)
        m = seg.manifest
        return {"status": "ready", "model": m.name, "version": m.version, "provider": seg.provider}

    @app.get("/model", summary="The model's manifest")
    async def model(request: Request) -> dict:
        return ready_segmenter(request).manifest.to_dict()

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/segment",
        summary="Mask the car in one photo",
        responses={
            200: {
                "content": {"image/png": {}, "application/json": {}},
                "description": "PNG mask (0/255), RGBA cutout, 8-bit probabilities (PNG), or RLE JSON",
            }
        },
    )
    async def segment(
        request: Request,
        file: Annotated[UploadFile, File(description="the photo: JPEG, PNG, WebP, BMP, AVIF or HEIC")],
        format: Annotated[
            MaskFormat,
            Query(description="png mask, rle JSON, RGBA cutout, or probabilities (8-bit PNG: mask = value > 255 x t)"),
        ] = MaskFormat.png,
        threshold: Threshold = None,
        size: Annotated[MaskSize, Query(description="mask at the photo's size or the model's")] = MaskSize.original,
    ):
        seg = ready_segmenter(request)
        data = await read_upload(file, settings.max_upload_bytes)
        thr = seg.threshold if threshold is None else threshold
        try:
            body, result = await in_worker(
                pipeline.segment_one,
                seg,
                file.filename or "photo",
                data,
                format,
                thr,
                size,
                settings.max_pixels,
                metrics.model_seconds,
            )
        except Exception as exc:  # noqa: BLE001 - mapped to a JSON error by kind
            raise classify(exc) from None
        metrics.photos.inc()
        if format is MaskFormat.rle:
            return {**body, "model": seg.manifest.name, "version": seg.manifest.version}
        headers = {
            "X-Image-Width": str(result.width),
            "X-Image-Height": str(result.height),
            "X-Mask-Coverage": f"{coverage(result.mask):.6f}",
            "X-Model-Version": seg.manifest.version,
        }
        return Response(body, media_type="image/png", headers=headers)

    @app.post("/segment/batch", summary="Mask the car in each photo of a set (e.g. a dealer's 16 views)")
    async def segment_batch(
        request: Request,
        files: Annotated[list[UploadFile], File(description="the photos")],
        format: Annotated[BatchFormat, Query(description="json with RLE per photo, or a zip of PNG masks")] = (
            BatchFormat.json
        ),
        threshold: Threshold = None,
        size: Annotated[MaskSize, Query()] = MaskSize.original,
    ):
        seg = ready_segmenter(request)
        if len(files) > settings.max_batch_files:
            raise APIError(413, "too_many_files", f"{len(files)} files, over the limit of {settings.max_batch_files}")
        uploads: list[tuple[str, bytes | APIError]] = []
        for upload in files:
            name = upload.filename or f"photo{len(uploads) + 1}"
            try:
                uploads.append((name, await read_upload(upload, settings.max_upload_bytes)))
            except APIError as err:
                uploads.append((name, err))
        thr = seg.threshold if threshold is None else threshold
        entries, results = await in_worker(
            pipeline.segment_many,
            seg,
            uploads,
            thr,
            size,
            settings.max_pixels,
            settings.model_batch_size,
            metrics.model_seconds,
        )
        metrics.photos.inc(len(results))
        errors = [e for e in entries if isinstance(e, dict)]
        if format is BatchFormat.zip:
            body = await in_worker(pipeline.zip_of_masks, results, errors)
            return Response(
                body,
                media_type="application/zip",
                headers={"Content-Disposition": 'attachment; filename="masks.zip"', "X-Failed-Count": str(len(errors))},
            )
        rendered = await in_worker(lambda: [e if isinstance(e, dict) else pipeline.rle_entry(e) for e in entries])
        return {
            "model": seg.manifest.name,
            "version": seg.manifest.version,
            "count": len(entries),
            "failed": len(errors),
            "results": rendered,
        }

    return app


app = create_app()
