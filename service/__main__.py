"""`carmask-serve` / `python -m service`: run the API with uvicorn on the configured host and port."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from service.settings import ServiceSettings


def main(argv: list[str] | None = None) -> None:
    settings = ServiceSettings()
    parser = argparse.ArgumentParser(
        prog="carmask-serve",
        description="Serve POST /segment over the ONNX model. All settings also come from CARMASK_* environment "
        "variables (see service/settings.py).",
    )
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--model", default=str(settings.model), help="model manifest (.json)")
    args = parser.parse_args(argv)
    settings = settings.model_copy(update={"host": args.host, "port": args.port, "model": args.model})
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    access = logging.getLogger("carmask.access")  # bare JSON lines, one per request, on stdout
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.propagate = False

    from carmask.manifest import ManifestError, load_manifest
    from service.app import GPU_PROVIDERS, create_app
    from service.registry import manifest_paths

    try:  # fail before binding the port, with one clear line
        for path in manifest_paths(settings.model, settings.models):
            load_manifest(path)
    except ManifestError as exc:
        sys.exit(f"carmask-serve: {exc}")
    if settings.require_gpu:
        import onnxruntime as ort

        if not set(GPU_PROVIDERS) & set(ort.get_available_providers()):
            sys.exit(
                "carmask-serve: CARMASK_REQUIRE_GPU is set but this onnxruntime has no CUDA or TensorRT provider "
                f"({', '.join(ort.get_available_providers())}); install onnxruntime-gpu (CUDA 12, cuDNN 9) or unset it"
            )

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=not settings.access_log,  # ours replaces uvicorn's
    )


if __name__ == "__main__":
    main()
