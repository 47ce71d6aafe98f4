"""Service settings: environment variables prefixed `CARMASK_`, with defaults here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from carmask.inference import DEFAULT_MODEL

MB = 1024 * 1024


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARMASK_", protected_namespaces=())

    host: str = "127.0.0.1"
    port: int = 8000
    model: Path = Field(DEFAULT_MODEL, description="the default model's manifest (.json) beside its .onnx file")
    models: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="more models by name: manifests or folders of them, comma-separated"
    )
    providers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="onnxruntime providers, comma-separated; empty: CUDA if present, else CPU"
    )
    threads: int = Field(0, description="onnxruntime intra-op threads; 0: all cores")
    inference_workers: int = Field(2, description="requests processed at once (decode, model, encode)")
    # On CPU a batch of 4 runs as fast per photo as 16 and needs a third of the memory; GPUs want more.
    model_batch_size: int = Field(4, description="photos per model call in /segment/batch")
    flip_tta: bool | None = Field(
        None, description="mirrored test-time augmentation for every model (true/false); unset: each manifest's"
    )
    max_upload_bytes: int = Field(20 * MB, description="largest photo accepted, in bytes")
    max_batch_bytes: int = Field(256 * MB, description="largest /segment/batch request, in bytes")
    max_pixels: int = Field(50_000_000, description="largest photo accepted, in pixels (decompression bombs)")
    max_batch_files: int = Field(32, description="most photos in one /segment/batch request")
    max_waiting: int = Field(2, description="photos that may wait for a worker, per model; beyond: 503")
    request_timeout: float = Field(30.0, description="seconds a request may take; past it 503 (waiting) or 504")
    linger_seconds: float = Field(5.0, description="after an early answer (413), read the rest this long")
    linger_bytes: int = Field(64 * MB, description="... and at most this many bytes, then close")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="API keys (plain or sha256:<hex>), comma-separated; empty: no keys"
    )
    api_keys_file: Path | None = Field(None, description="file of SHA-256 key hashes, one per line")
    rate_limit: float = Field(0.0, description="requests per second per API key; 0: no limit")
    rate_burst: int = Field(10, description="requests a key may make at once")
    require_gpu: bool = Field(False, description="refuse to start unless a CUDA/TensorRT provider is active")
    access_log: bool = Field(True, description="one JSON line per request on the carmask.access logger")
    log_level: str = "info"

    @field_validator("providers", "models", "api_keys", mode="before")
    @classmethod
    def _split(cls, value):
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value
