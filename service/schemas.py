"""The API's contract: response models and, per endpoint, every status it can answer with and its media type.

FastAPI would otherwise describe every 4xx as its own `HTTPValidationError`; this service answers every
error with `{"error": code, "detail": text}` (ErrorBody), and says so here, endpoint by endpoint, so that
a client generated from /openapi.json reads every answer right.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. unsupported_image, overloaded")
    detail: str = Field(description="what was wrong, in words")


class Health(BaseModel):
    status: str = Field(description='"ok"')


class Ready(BaseModel):
    status: str = Field(description='"ready"')
    model: str = Field(description="the default model's name")
    version: str
    provider: str = Field(description="onnxruntime execution provider of the default model")
    models: list[str] = Field(description="every model served, by name")


class ModelInfo(BaseModel):
    name: str
    version: str
    task: str = Field(description="what the output means, e.g. binary-segmentation")
    aliases: list[str] = Field(default_factory=list, description="other names ?model= accepts")
    default: bool
    provider: str
    flip_tta: bool = Field(False, description="whether each photo also runs mirrored and the answers are averaged "
                           "(the manifest's input.flip_tta, or the service's CARMASK_FLIP_TTA)")  # fmt: skip
    bands: list[str] | None = Field(None, description="multi-band models: the bands they take, in order")
    classes: list[str] | None = Field(None, description="multi-class models: the classes, by index")
    sensors: list[str] | None = Field(None, description="multi-band models: the sensor presets ?sensor= may name "
                                      "(empty: any whose stack holds the model's bands)")  # fmt: skip
    windows: bool | None = Field(None, description="photo models: whether it marks the car's glass (format=windows, "
                                 "see-through cutouts)")  # fmt: skip
    refines: bool | None = Field(None, description="photo models: whether quality=best redraws the outline at the "
                                 "photo's resolution (a learned stage in output.refine)")  # fmt: skip


class ModelList(BaseModel):
    default: str
    models: list[ModelInfo]


class RLEMask(BaseModel):
    name: str
    width: int
    height: int
    rle: str = Field(description="Kaggle Carvana RLE: row-major, 1-indexed 'start length' pairs")
    coverage: float = Field(description="share of the pixels that are car")
    windows: str | None = Field(None, description="the car's glass, Kaggle RLE; only from models that mark glass")
    model: str
    version: str


class PatchClasses(BaseModel):
    """A multi-band model's answer (format=rle): the scene's cover, each class's share and its RLE."""

    model_config = {"extra": "allow"}  # one <group>_pct field per group in the manifest, e.g. cloud_cover_pct

    name: str
    model: str
    version: str
    width: int
    height: int
    valid_pixels: int = Field(description="pixels with data (not fill)")
    fill_pixels: int = Field(description="pixels without data: no class, in no share")
    classes: dict[str, float] = Field(description="percent of the valid pixels per class")
    rle: dict[str, str] = Field(description="Kaggle RLE of each class's pixels (row-major, 1-indexed)")
    fill_value: int = Field(description="class index of fill pixels in format=png")


class BatchMask(BaseModel):
    name: str
    width: int
    height: int
    rle: str
    coverage: float
    windows: str | None = Field(None, description="the car's glass, Kaggle RLE; only from models that mark glass")


class BatchFailure(BaseModel):
    name: str
    error: str
    detail: str
    status: int = Field(description="the HTTP status this photo alone would have got")


class BatchResult(BaseModel):
    model: str
    version: str
    count: int
    failed: int
    results: list[BatchMask | BatchFailure]


MANIFEST_SCHEMA: dict[str, Any] = {"type": "object", "description": "the model's manifest (models/<name>.json)"}
BINARY = {"schema": {"type": "string", "format": "binary"}}


def errors(*statuses: int) -> dict[int | str, dict]:
    """The error envelope for each status."""
    words = {
        400: "empty upload, or a body that is not valid multipart",
        401: "missing or wrong API key (only when keys are configured)",
        404: "no such model (or path)",
        413: "upload, photo or batch over its limit, or a patch over the model's largest side (scenes: the CLI)",
        415: "not an accepted image (or, for multi-band models, patch) format",
        422: "corrupt photo, a patch whose bands or size do not fit the model, or a missing field or bad option",
        429: "over the API key's rate limit (Retry-After)",
        500: "unexpected failure",
        503: "not ready, or overloaded (Retry-After)",
        504: "the answer took past the request deadline",
    }
    return {s: {"model": ErrorBody, "description": words[s]} for s in statuses}


# Every API endpoint behind the key check and the admission queue can answer these.
GUARDED = (401, 429, 500)
WORK = (*GUARDED, 503, 504)


PHOTO_MEDIA_TYPES = "image/jpeg, image/png, image/webp, image/bmp, image/avif, image/heic, image/heif"
PATCH_MEDIA_TYPES = "image/tiff, application/octet-stream"  # multi-band patches: TIFF or NumPy .npy


def describe_uploads(schema: dict, max_files: int) -> dict:
    """Say what the multipart fields really take: photos (not any octet stream), one to `max_files` of them."""
    bodies = schema.get("components", {}).get("schemas", {})
    photo = {"type": "string", "format": "binary", "contentMediaType": "image/*"}
    if "Body_segment_segment_post" in bodies:  # a photo, or a .npy patch: no one media type
        bodies["Body_segment_segment_post"]["properties"]["file"].update(type="string", format="binary")
    if "Body_segment_batch_segment_batch_post" in bodies:
        files = bodies["Body_segment_batch_segment_batch_post"]["properties"]["files"]
        files.update(items=dict(photo), minItems=1, maxItems=max_files)
    for path, field in (("/segment", "file"), ("/segment/batch", "files")):
        body = schema.get("paths", {}).get(path, {}).get("post", {}).get("requestBody", {})
        if "multipart/form-data" in body.get("content", {}):
            media = PHOTO_MEDIA_TYPES + (", " + PATCH_MEDIA_TYPES if path == "/segment" else "")
            body["content"]["multipart/form-data"]["encoding"] = {field: {"contentType": media}}
    return schema
