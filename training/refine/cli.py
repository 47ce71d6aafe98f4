"""`carmask-refiner`: train the full-resolution edge refiner on a car model's answers, score candidates on
held-out photos, or ship one beside the model (a second ONNX graph and output.refine's learned stage)."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from training.options import add_options, from_options
from training.refine.config import RefineConfig


def _layout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tile", type=int, default=32, help="grid squares at serving time, px")
    parser.add_argument("--margin", type=int, default=8, help="context around each square, px")
    parser.add_argument("--max-side", type=int, default=2048, help="larger photos are refined at this side")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="carmask-refiner",
        description="The learned refinement at the photo's own resolution. `train`: the car model's answers for "
        "Carvana's training cars, DAVIS and DSMLR cached once, tiles along their outlines, the network fitted "
        "(resumable; runs/refine/). `score`: Dice, IoU, boundary F and top edge on Carvana's validation cars, "
        "DAVIS's held-out sequence and user-photos (validation only), for trained runs and the full-resolution "
        "guided filter, against the coarse answer. `export`: a run's network beside the model, its manifest "
        "gaining the stage.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_options(sub.add_parser("train", help="fit a refiner (a rerun resumes)"), RefineConfig)
    score = sub.add_parser("score", help="score refiners against the coarse answer on held-out photos")
    score.add_argument("runs", nargs="*", type=Path, help="`train` runs (best.keras)")
    score.add_argument("--guided", action="store_true", help="also the full-resolution guided filter")
    score.add_argument("--sets", default="carvana,user-photos,davis", help="which held-out sets")
    score.add_argument("--every", type=int, default=1, help="every n-th photo (quicker, rougher)")
    score.add_argument("--user-photos-dir", type=Path, default=Path("../shared/data/cars-outside/user-photos"),
                       help="user-photos (validation only: scored here, never trained on)")  # fmt: skip
    score.add_argument("--out", type=Path, help="write the per-photo rows and the summary here (JSON)")
    _layout(score)
    add_options(score, RefineConfig)
    exp = sub.add_parser("export", help="write <out>/<model>-refine.onnx and the model's manifest with the stage")
    exp.add_argument("run_dir", type=Path, help="a `train` run (best.keras, config.json, history.json)")
    exp.add_argument("--model", type=Path, default=Path("models/carmask-v2.json"), help="the car model's manifest")
    exp.add_argument("--version", required=True, help="the new manifest's version, e.g. 2.8.0")
    exp.add_argument("--name", help="a new model of this name beside the car model (default: the car model's)")
    exp.add_argument("--aliases", help="the new model's other names, comma-separated")
    exp.add_argument("--out", type=Path, default=Path("models"))
    exp.add_argument("--metrics", type=Path, help="a `score --out` report whose summary goes into the manifest")
    _layout(exp)
    args = parser.parse_args(argv)

    if args.command == "train":
        from training.refine.train import train

        train(from_options(args, RefineConfig))
        return 0
    if args.command == "score":
        from training.refine.evaluate import score_main

        config = from_options(args, RefineConfig)
        with tempfile.TemporaryDirectory() as tmp:
            report = score_main(config, args, Path(tmp))
        print(json.dumps(report["summary"], indent=1))
        return 0
    from training.refine.export import export_refiner

    metrics = json.loads(args.metrics.read_text())["summary"] if args.metrics else None
    aliases = args.aliases.split(",") if args.aliases else None
    manifest = export_refiner(args.run_dir, args.model, args.version, args.out, args.tile, args.margin,
                              args.max_side, metrics, args.name, aliases)  # fmt: skip
    print(f"wrote {manifest.path} ({manifest.name} {manifest.version}, refine {manifest.output.refine})")
    return 0
