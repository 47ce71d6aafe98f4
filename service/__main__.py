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

    from carmask.manifest import ManifestError, load_manifest
    from service.app import create_app

    try:
        load_manifest(settings.model)  # fail before binding the port, with one clear line
    except ManifestError as exc:
        sys.exit(f"carmask-serve: {exc}")

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)


if __name__ == "__main__":
    main()
