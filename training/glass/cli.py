"""`carmask-glass`: fit the glass head on a frozen car network (train), or ship it with the model (export)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.glass.config import GlassConfig
from training.options import add_options, from_options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="carmask-glass",
        description="The car's glass as a second output of a car model. `train`: the frozen trunk's features "
        "once, a head per fold of user-photos (report.json: glass IoU per photo, per fold, per group), then the "
        "head that ships on all photos (model.keras: the trunk's car output and the head's windows). `export`: "
        "that model as one ONNX graph beside the car model's manifest, whose car output it must reproduce.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_options(sub.add_parser("train", help="k-fold validation, then the head that ships"), GlassConfig)
    exp = sub.add_parser("export", help="write <out>/<name>.onnx and .json: the car model with its windows output")
    exp.add_argument("run_dir", type=Path, help="a `carmask-glass train` run (model.keras, report.json)")
    exp.add_argument("--manifest", type=Path, default=Path("models/carmask-v2.json"), help="the car model's")
    exp.add_argument("--version", required=True, help="the new version, e.g. 2.7.0")
    exp.add_argument("--out", type=Path, default=Path("models"))
    args = parser.parse_args(argv)

    if args.command == "train":
        from training.glass.train import run

        config = from_options(args, GlassConfig)
        report = run(config)
        print(json.dumps({k: report[k] for k in ("data", "k_fold")}, indent=1))
        return 0
    from training.glass.export import export_glass

    manifest = export_glass(args.run_dir, args.manifest, args.version, args.out)
    print(f"wrote {manifest.path} ({manifest.name} {manifest.version}, windows output {manifest.output.windows})")
    return 0
