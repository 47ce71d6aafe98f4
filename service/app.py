"""The FastAPI application: `uvicorn service.app:app` serves the shipped models.

Each model's `Segmenter` (ONNX session) is created once at start-up and shared by every request; the
per-photo work runs in worker threads behind bounded admission, never on the event loop. `/` is a page
for people (service/static/), `/docs` the OpenAPI UI, both served from this process: nothing is loaded
from a CDN, so they work offline. Every answer, errors included, is described in /openapi.json.
"""

from __future__ import annotations

import importlib.resources
import logging
from contextlib import asynccontextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from carmask import __version__
from carmask.clouds.patches import PATCH_FORMAT_NAMES, PatchError
from carmask.clouds.segmenter import PatchSegmenter
from carmask.clouds.sensors import SENSOR_NAMES, SENSORS, BandInput
from carmask.cutout import CutoutOptions, OptionError, Output, Shadow, Windows
from carmask.cutout.options import COLOUR, MAX_CROP_MARGIN
from carmask.imaging import FORMAT_NAMES
from carmask.inference import Segmenter
from carmask.outputs import coverage
from carmask.segmenters import open_segmenter
from service import clouds, pipeline
from service.admission import Admission, AdmissionGate
from service.auth import KeyAuth, load_key_hashes
from service.errors import APIError, classify, install_handlers
from service.limits import BodySizeLimit
from service.metrics import MetricsMiddleware, ServiceMetrics
from service.pipeline import BatchFormat, Cars, MaskFormat, MaskSize, Quality
from service.registry import AnySegmenter, ModelRegistry
from service.schemas import (
    BINARY,
    GUARDED,
    MANIFEST_SCHEMA,
    WORK,
    BatchResult,
    Health,
    ModelList,
    PatchClasses,
    Ready,
    RLEMask,
    describe_uploads,
    errors,
)
from service.settings import ServiceSettings
from service.tracing import TracingMiddleware

log = logging.getLogger("carmask.service")
MULTIPART_SLACK = 64 * 1024  # room for multipart headers around one photo
STATIC = Path(__file__).resolve().parent / "static"
SWAGGER_UI = Path(str(importlib.resources.files("fastapi_offline") / "static"))  # swagger-ui-bundle.js, .css
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")

# Optional query values are typed without None: a query string cannot say null, and the schema should not.
Threshold = Annotated[float, Query(ge=0.0, le=1.0, description="probability threshold (default: the model's)")]
ModelName = Annotated[str, Query(description="model by name (GET /models); default: the default model")]
CarsQuery = Annotated[
    Cars,
    Query(
        description="which cars the mask covers: main (the photo's car: the largest one and what lies within reach "
        "of it; other cars and specks dropped) or all (every car the model sees); default: the model's manifest "
        "(output.subject)"
    ),
]
QualityQuery = Annotated[
    Quality,
    Query(
        description="best: the mask's outline redrawn at the photo's own resolution where the model has a learned "
        "refiner (`refines` in GET /models; output.refine in its manifest); fast: skips that stage (the model's "
        "answer upsampled, as size=model and older models always are)"
    ),
]
WindowsQuery = Annotated[
    Windows,
    Query(
        description="format=cutout (other formats ignore the cutout options): the car's glass opaque (as "
        "photographed), transparent (the new background shows through) or tinted (dark, partly opaque); the "
        "last two need a model with a glass output"
    ),
]
ShadowQuery = Annotated[Shadow, Query(description="format=cutout: none, or a soft contact shadow under the car")]
BgColor = Annotated[
    str,
    Query(
        pattern=COLOUR.pattern,
        description="format=cutout: put the car on this colour, RRGGBB or RRGGBBAA hex "
        "(e.g. ffffff); default: transparent",
    ),
]
CropQuery = Annotated[bool, Query(description="format=cutout: frame the result to the car's box plus crop_margin")]
CropMargin = Annotated[
    float,
    Query(
        ge=0.0,
        le=MAX_CROP_MARGIN,
        description="format=cutout with crop: margin per side, a fraction of the car's "
        "box (0 to 0.5); the canvas grows past the photo where it must",
    ),
]
OutputQuery = Annotated[Output, Query(description="format=cutout: png, webp, or jpeg (only with an opaque bg_color)")]
Decontaminate = Annotated[
    bool,
    Query(description="format=cutout: the edge pixels take the car's colour, not the old background's (no halo)"),
]
BandNames = Annotated[
    str,
    Query(
        description="multi-band models: the patch's bands in file order, comma-separated, our names (e.g. "
        "blue,green,red,nir,swir1,swir2,cirrus,tir) or the sensor's (B02,B03,B04,B08); default: the sensor's "
        "usual stack of that many bands, or exactly the model's bands (GET /models). Photo models ignore it, as "
        "multi-band models ignore threshold and size"
    ),
]
SensorName = Enum("SensorName", {name: name for name in SENSOR_NAMES}, type=str)
SensorQuery = Annotated[
    SensorName,
    Query(
        description="multi-band models: the patch's sensor, which says which band is which (by the band count) "
        "and how integer digital numbers become reflectance: "
        + "; ".join(f"{s.name}: {s.description}" for s in SENSORS.values())
        + ". Floating-point patches are taken as reflectance whatever the sensor. A model lists the sensors it "
        "takes in GET /models"
    ),
]
DnScale = Annotated[
    float,
    Query(gt=0, description="multi-band models, integer patches: reflectance = DN x dn_scale + dn_add (default: "
          "the sensor's; e.g. a Landsat Level-1 MTL's REFLECTANCE_MULT_BAND)"),
]  # fmt: skip
DnAdd = Annotated[
    float,
    Query(description="multi-band models, integer patches: the offset after scaling (default: the sensor's; "
          "Sentinel-2 before processing baseline 04.00: 0)"),
]  # fmt: skip


def part_bytes(text: str) -> bytes:
    """The bytes of a multipart part sent without a filename, which Starlette hands over as text.

    Starlette decodes such a part as UTF-8, falling back to Latin-1; a photo is never valid UTF-8 (JPEG and
    PNG start with bytes UTF-8 forbids), so its Latin-1 text encodes back to exactly the bytes sent.
    """
    try:
        raw = text.encode("latin-1")
        raw.decode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8")
    except UnicodeDecodeError:
        return raw  # the Latin-1 fallback: exact
    return text.encode("utf-8")


async def read_upload(upload: UploadFile | str, limit: int) -> bytes:
    """The bytes of one uploaded photo; 413 over `limit`, 400 when empty."""
    if isinstance(upload, str):
        data = part_bytes(upload)
        if len(data) > limit:
            raise APIError(413, "upload_too_large", f"a photo part is over the limit of {limit} bytes")
        if not data:
            raise APIError(400, "empty_file", "a photo part is empty")
        return data
    if upload.size is not None and upload.size > limit:
        raise APIError(413, "upload_too_large", f"{upload.filename}: {upload.size} bytes, over the limit of {limit}")
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise APIError(413, "upload_too_large", f"{upload.filename}: over the limit of {limit} bytes")
    if not data:
        raise APIError(400, "empty_file", f"{upload.filename or 'file'}: the upload is empty")
    return data


def cutout_options(seg: Segmenter, fmt: MaskFormat, given: dict) -> CutoutOptions | None:
    """The cutout's options, checked: 422 for a malformed one or one that needs what the model lacks. Other
    formats ignore them (None), as photo models ignore `bands`."""
    if fmt is not MaskFormat.cutout:
        return None
    try:
        options = CutoutOptions(**{k: v for k, v in given.items() if v is not None})
    except OptionError as exc:
        raise APIError(422, "invalid_request", str(exc)) from None
    if options.windows is not Windows.opaque and not seg.glass.present:
        raise APIError(422, "invalid_request", f"windows={options.windows} needs a model that marks glass; "
                       f"{seg.manifest.name} {seg.manifest.version} does not (GET /models)")  # fmt: skip
    return options


def check_gpu(registry: ModelRegistry) -> None:
    """CARMASK_REQUIRE_GPU: every model must run on a GPU provider, or start-up stops."""
    on_cpu = [d["name"] for d in registry.describe() if d["provider"] not in GPU_PROVIDERS]
    if on_cpu:
        import onnxruntime as ort

        raise RuntimeError(
            f"CARMASK_REQUIRE_GPU is set but {on_cpu} run on the CPU (this onnxruntime offers "
            f"{ort.get_available_providers()}; install onnxruntime-gpu with CUDA 12 and cuDNN 9, or unset it)"
        )


def create_app(settings: ServiceSettings | None = None, segmenter: Segmenter | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    metrics = ServiceMetrics()
    admission = Admission(settings.inference_workers, settings.max_waiting, settings.request_timeout)

    def make_segmenter(manifest) -> AnySegmenter:
        return open_segmenter(manifest, settings.providers or None, settings.threads, settings.flip_tta)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Start-up: a missing model, a manifest that does not match its file, or a missing GPU stops here.
        if segmenter is not None:
            app.state.registry = ModelRegistry([segmenter])
        else:
            app.state.registry = ModelRegistry.load(settings.model, settings.models, make_segmenter)
        if settings.require_gpu:
            check_gpu(app.state.registry)
        for d in app.state.registry.describe():
            log.info("serving %s v%s on %s%s", d["name"], d["version"], d["provider"], " (default)" * d["default"])
        yield
        app.state.registry = None

    app = FastAPI(
        title="carmask",
        version=__version__,
        description="Masks the car in a photo: U-Nets (classic, or on a pretrained MobileNetV2 encoder), served "
        "with ONNX Runtime; models by name (GET /models). Every error is `{error, detail}` JSON; 503 and 429 carry "
        "Retry-After.",
        lifespan=lifespan,
        docs_url=None,  # served below from local files instead of a CDN
        redoc_url=None,
    )
    app.state.settings, app.state.metrics, app.state.registry = settings, metrics, None
    install_handlers(app)

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = describe_uploads(FastAPI.openapi(app), settings.max_batch_files)
        return app.openapi_schema

    app.openapi = openapi

    def body_limit(path: str) -> int | None:
        if path == "/segment":
            return settings.max_upload_bytes + MULTIPART_SLACK
        if path == "/segment/batch":
            return settings.max_batch_bytes
        return None

    # Outermost last: tracing sees every answer; the size limit lingers on early answers of the key check and
    # of the admission gate too.
    app.add_middleware(AdmissionGate, admission=admission)
    app.add_middleware(KeyAuth, hashes=load_key_hashes(settings.api_keys, settings.api_keys_file),
                       rate=settings.rate_limit, burst=settings.rate_burst)  # fmt: skip
    app.add_middleware(BodySizeLimit, limit_for=body_limit, linger_seconds=settings.linger_seconds,
                       linger_bytes=settings.linger_bytes)  # fmt: skip
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(TracingMiddleware, log_requests=settings.access_log)

    def registry(request: Request) -> ModelRegistry:
        reg = request.app.state.registry
        if reg is None:
            raise APIError(503, "not_ready", "the models are not loaded", headers={"Retry-After": "1"})
        return reg

    def model_for(request: Request, name: str | None) -> AnySegmenter:
        seg = registry(request).get(name)
        request.state.model = seg.manifest.name
        return seg

    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_UI), name="swagger")  # before /static
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:  # browsers ask for it whatever the page links
        return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon")

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

    @app.get("/health", summary="Liveness: the process is up", response_model=Health)
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: every model is loaded", response_model=Ready, responses=errors(503))
    async def ready(request: Request):
        reg = registry(request)  # 503 not_ready until the lifespan has loaded them
        default = reg.get(None)
        m = default.manifest
        return {"status": "ready", "model": m.name, "version": m.version, "provider": default.provider,
                "models": reg.names}  # fmt: skip

    @app.get("/models", summary="The models served, by name", response_model=ModelList, responses=errors(*GUARDED, 503))
    async def models(request: Request) -> dict:
        reg = registry(request)
        return {"default": reg.default, "models": reg.describe()}

    @app.get(
        "/models/{name}",
        summary="One model's manifest",
        responses={200: {"content": {"application/json": {"schema": MANIFEST_SCHEMA}}}, **errors(*GUARDED, 404, 503)},
    )
    async def model_by_name(request: Request, name: Annotated[str, PathParam(description="model name")]) -> dict:
        return model_for(request, name).manifest.to_dict()

    @app.get(
        "/model",
        summary="The default model's manifest",
        responses={200: {"content": {"application/json": {"schema": MANIFEST_SCHEMA}}}, **errors(*GUARDED, 503)},
    )
    async def model(request: Request) -> dict:
        return model_for(request, None).manifest.to_dict()

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **errors(*GUARDED)},
    )
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def segment_patch(request: Request, seg: PatchSegmenter, file: UploadFile, fmt, band_query: dict):
        """/segment for a multi-band model: the scene's classes and cover as JSON, or a class-index PNG.

        threshold and size change nothing here: each pixel takes its most probable class, and the model runs at
        the patch's own size. A format it cannot produce is refused.
        """
        fmt = fmt or MaskFormat.rle
        if fmt not in clouds.PATCH_FORMATS:
            raise APIError(422, "invalid_request", f"format {fmt} is for photo models; {seg.manifest.name} answers "
                           "rle (JSON: cover, classes, RLE per class) or png (class indices)")  # fmt: skip
        sensor = band_query.pop("sensor")
        try:
            band_input = BandInput.parse(sensor.value if sensor else None, **band_query)
        except PatchError as exc:
            raise APIError(422, "invalid_request", str(exc)) from None
        try:
            data = await read_upload(file, settings.max_upload_bytes)
        except APIError as exc:
            if exc.status == 413:
                exc.detail = f"{exc.detail}; whole scenes go through `carmask-predict --model {seg.manifest.name}`"
            raise
        request.state.photos = 1
        timings = request.state.timings
        args = (seg, file.filename or "patch", data, fmt, band_input, timings)
        try:
            answer = await admission.run(seg.manifest.name, 1, request.state.started, clouds.segment_patch, *args)
        except Exception as exc:  # noqa: BLE001 - mapped to a JSON error by kind
            raise classify(exc) from None
        metrics.record_photos(seg.manifest.name, 1, timings)
        if fmt is MaskFormat.rle:
            return answer.body
        headers = {
            "X-Image-Width": str(answer.width),
            "X-Image-Height": str(answer.height),
            "X-Cover": clouds.cover_header(answer.summary),
            "X-Model": seg.manifest.name,
            "X-Model-Version": seg.manifest.version,
        }
        return Response(answer.body, media_type="image/png", headers=headers)

    @app.post(
        "/segment",
        summary="Mask the car in one photo, or classify one multi-band patch (e.g. clouds)",
        responses={
            200: {
                "content": {
                    "image/png": BINARY,
                    "image/webp": BINARY,
                    "image/jpeg": BINARY,
                    "application/json": {
                        "schema": {"anyOf": [RLEMask.model_json_schema(), PatchClasses.model_json_schema()]}
                    },
                },
                "description": "Photo models: PNG mask (0/255), glass mask (format=windows), cutout (PNG, or WebP "
                "or JPEG by `output`) or 8-bit probabilities PNG; RLE JSON for format=rle (with the windows' RLE "
                "when the model marks glass). Multi-band models: JSON with each group's and class's share of the "
                "valid pixels and RLE per class (format=rle, the default), or a palette PNG of class indices "
                "(format=png, fill 255)",
            },
            **errors(400, 404, 413, 415, 422, *WORK),
        },
    )
    async def segment(
        request: Request,
        file: Annotated[
            UploadFile,
            File(description=f"the photo ({FORMAT_NAMES}), or for a multi-band model the patch ({PATCH_FORMAT_NAMES})"),
        ],
        format: Annotated[
            MaskFormat,
            Query(
                description="png mask, rle JSON, cutout (the car on transparency or bg_color; see the cutout "
                "options), windows (the car's glass as a PNG mask, models with a glass output), or probabilities "
                "(8-bit PNG: mask = value > 255 x t); default png. Multi-band models: rle (JSON, the default) or png "
                "(class indices)"
            ),
        ] = None,
        threshold: Threshold = None,
        size: Annotated[
            MaskSize,
            Query(description="mask at the photo's size, or the model's (the part of its input that holds the photo)"),
        ] = MaskSize.original,
        model: ModelName = None,
        bands: BandNames = None,
        sensor: SensorQuery = None,
        dn_scale: DnScale = None,
        dn_add: DnAdd = None,
        cars: CarsQuery = None,
        quality: QualityQuery = Quality.best,
        windows: WindowsQuery = Windows.opaque,
        shadow: ShadowQuery = Shadow.none,
        bg_color: BgColor = None,
        crop: CropQuery = False,
        crop_margin: CropMargin = CutoutOptions.crop_margin,
        output: OutputQuery = Output.png,
        decontaminate: Decontaminate = False,
    ):
        seg = model_for(request, model)
        cutout_args = dict(windows=windows, shadow=shadow, bg_color=bg_color, crop=crop, crop_margin=crop_margin,
                           output=output, decontaminate=decontaminate)  # fmt: skip
        if isinstance(seg, PatchSegmenter):
            band_query = dict(sensor=sensor, bands=bands, dn_scale=dn_scale, dn_add=dn_add)
            return await segment_patch(request, seg, file, format, band_query)
        format = format or MaskFormat.png
        options = cutout_options(seg, format, cutout_args)
        if format is MaskFormat.windows and not seg.glass.present:
            raise APIError(422, "invalid_request", f"format=windows needs a model that marks glass; "
                           f"{seg.manifest.name} {seg.manifest.version} does not (GET /models)")  # fmt: skip
        data = await read_upload(file, settings.max_upload_bytes)
        thr = seg.threshold if threshold is None else threshold
        request.state.photos = 1
        timings = request.state.timings
        args = (seg, file.filename or "photo", data, format, thr, size, settings.max_pixels, timings, cars, options,
                quality)  # fmt: skip
        try:
            body, result = await admission.run(seg.manifest.name, 1, request.state.started, pipeline.segment_one, *args)
        except Exception as exc:  # noqa: BLE001 - mapped to a JSON error by kind
            raise classify(exc) from None
        metrics.record_photos(seg.manifest.name, 1, timings)
        if format is MaskFormat.rle:
            return {**body, "model": seg.manifest.name, "version": seg.manifest.version}
        width, height = pipeline.output_size(result, format, options)
        headers = {
            "X-Image-Width": str(width),
            "X-Image-Height": str(height),
            "X-Mask-Coverage": f"{coverage(result.mask):.6f}",
            "X-Model": seg.manifest.name,
            "X-Model-Version": seg.manifest.version,
        }
        media = options.media_type if format is MaskFormat.cutout else "image/png"
        return Response(body, media_type=media, headers=headers)

    @app.post(
        "/segment/batch",
        summary="Mask the car in each photo of a set (e.g. a dealer's 16 views)",
        response_model=BatchResult,
        response_model_exclude_none=True,  # `windows` only where the model marks glass
        responses={
            200: {
                "content": {"application/zip": BINARY},
                "description": "JSON with RLE per photo (a failed photo has error, detail, status), or for "
                "format=zip a zip of <photo>_mask.png plus errors.json when some failed",
            },
            **errors(400, 404, 413, 422, *WORK),
        },
    )
    async def segment_batch(
        request: Request,
        files: Annotated[
            list[UploadFile | str],
            File(description="the photos, each a part with a filename (parts without one: up to 1 MB)"),
        ],
        format: Annotated[BatchFormat, Query(description="json with RLE per photo, or a zip of PNG masks")] = (
            BatchFormat.json
        ),
        threshold: Threshold = None,
        size: Annotated[
            MaskSize,
            Query(
                description="masks at the photos' sizes, or the model's (the part of its input that holds each photo)"
            ),
        ] = MaskSize.original,
        model: ModelName = None,
        cars: CarsQuery = None,
        quality: QualityQuery = Quality.best,
    ):
        seg = model_for(request, model)
        if isinstance(seg, PatchSegmenter):
            raise APIError(422, "invalid_request", f"/segment/batch takes photos; send each patch for "
                           f"{seg.manifest.name} to POST /segment")  # fmt: skip
        if len(files) > settings.max_batch_files:
            raise APIError(413, "too_many_files", f"{len(files)} files, over the limit of {settings.max_batch_files}")
        uploads: list[tuple[str, bytes | APIError]] = []
        for upload in files:
            name = getattr(upload, "filename", None) or f"photo{len(uploads) + 1}"
            try:
                uploads.append((name, await read_upload(upload, settings.max_upload_bytes)))
            except APIError as err:
                uploads.append((name, err))
        thr = seg.threshold if threshold is None else threshold
        request.state.photos = len(uploads)
        timings = request.state.timings

        def work():
            json_glass = format is BatchFormat.json and seg.glass.present  # a zip holds the car masks alone
            entries, results = pipeline.segment_many(
                seg,
                uploads,
                thr,
                size,
                settings.max_pixels,
                settings.model_batch_size,
                timings,
                cars,
                json_glass,
                quality,
            )
            errors_ = [e for e in entries if isinstance(e, dict)]
            with pipeline.Stopwatch(timings).stage("encode"):
                if format is BatchFormat.zip:
                    body = pipeline.zip_of_masks(results, errors_)
                else:
                    body = [e if isinstance(e, dict) else pipeline.rle_entry(e) for e in entries]
            return body, len(results), len(errors_)

        body, done, failed = await admission.run(seg.manifest.name, len(uploads), request.state.started, work)
        metrics.record_photos(seg.manifest.name, done, timings)
        if format is BatchFormat.zip:
            return Response(
                body,
                media_type="application/zip",
                headers={"Content-Disposition": 'attachment; filename="masks.zip"', "X-Failed-Count": str(failed)},
            )
        return {"model": seg.manifest.name, "version": seg.manifest.version, "count": len(uploads),
                "failed": failed, "results": body}  # fmt: skip

    return app


app = create_app()
