"""Command-line entry points of the training package (declared in pyproject.toml)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the way

from carmask.refine import METHODS as REFINE_METHODS
from carmask.refine import QUALITIES
from carmask.settings import add_arguments, from_namespace
from carmask.subject import MODES as SUBJECT_MODES
from carmask.subject import RULES as SUBJECT_RULES
from training.config import ENV_PREFIX, HELP, TrainConfig

TASKS = ("cars", "clouds")


RULE_HELP = {
    "same_height": "also keep whole regions at least this share of the main car's height (second views on "
    "brochure and livery sheets)",
    "prefer_whole": "the largest region no side of the frame cuts is the main car when it is at least this share "
    "of the largest region",
    "min_confidence": "a photo whose main region's mean probability is below this has no car (an empty mask)",
}


def _subject_rule_flags(parser: argparse.ArgumentParser, lead: str) -> None:
    """--same-height, --prefer-whole, --min-confidence: the optional rules of the main-subject selection."""
    for rule in SUBJECT_RULES:
        parser.add_argument(f"--{rule.replace('_', '-')}", type=float, help=lead + RULE_HELP[rule])


def _task(argv: list[str] | None) -> tuple[str, list[str]]:
    """`--task cars|clouds` taken off the command line (default cars); the rest goes to that task's parser."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--task", choices=TASKS, default="cars")
    known, rest = peek.parse_known_args(argv)
    return known.task, rest


def train_main(argv: list[str] | None = None) -> None:
    task, argv = _task(argv)
    if task == "clouds":
        from training.clouds.cli import train_main as clouds_train

        return clouds_train(argv)
    parser = argparse.ArgumentParser(
        prog="carmask-train",
        description="Train a car U-Net on a Carvana folder and the other car sources. Writes checkpoints "
        "(best.keras, last.keras), log.csv, curves.png and split.json into the run folder. "
        "`--task clouds --help`: the cloud model's options.",
    )
    add_arguments(parser, TrainConfig, ENV_PREFIX, HELP)
    cfg = from_namespace(TrainConfig, parser.parse_args(argv))
    from training.train import run_training

    run_training(cfg)


def evaluate_main(argv: list[str] | None = None) -> None:
    task, argv = _task(argv)
    if task == "clouds":
        from training.clouds.cli import evaluate_main as clouds_evaluate

        return clouds_evaluate(argv)
    parser = argparse.ArgumentParser(
        prog="carmask-evaluate",
        description="Evaluate a checkpoint (.keras) or exported model (.onnx/.json) on each validation set of a "
        "run (Carvana validation cars, DSMLR test photos, held-out DAVIS sequences, car-free photos), or on every "
        "labelled photo of a Carvana folder. Prints Dice/IoU/coverage per set and per photo kind at model and "
        "original resolution, writes report.json and examples_<set>.png. `--task clouds --help`: cloud models.",
    )
    parser.add_argument("model", type=Path, help="best.keras, last.keras, or models/<name>.onnx")
    parser.add_argument("--run-dir", type=Path, help="use this run's held-out data (split.json, config.json)")
    parser.add_argument("--data-dir", type=Path, help="labelled Carvana folder: every photo (instead of a run)")
    parser.add_argument(
        "--sets", help="comma-separated subset of carvana,dsmlr,davis,no_car (default: those present here)"
    )
    parser.add_argument("--out", type=Path, help="report folder (default: <run-dir>/eval or ./eval)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument(
        "--image-size", type=int, help="model input side (default: the manifest's, or the run's training size)"
    )
    parser.add_argument(
        "--flip-tta", action=argparse.BooleanOptionalAction,
        help="average with the horizontally flipped photo (default: an exported model's manifest says; off for a "
        "checkpoint)",
    )  # fmt: skip
    parser.add_argument("--no-original", action="store_true", help="skip the original-resolution scores")
    parser.add_argument(
        "--quality", choices=QUALITIES, default="best",
        help="original resolution: best runs the manifest's learned refinement at the photo's size, fast skips it",
    )  # fmt: skip
    parser.add_argument(
        "--subject",
        choices=SUBJECT_MODES,
        help="which marked regions the original-resolution mask keeps: main (the photo's car) or all "
        "(default: the manifest's for an exported model, all for a checkpoint)",
    )
    _subject_rule_flags(parser, "try the subject rule (default: the manifest's): ")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/carmask"))
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    parser.add_argument("--record", action="store_true", help="write the figures into the ONNX model's manifest")
    args = parser.parse_args(argv)

    from training.config import TrainConfig, load_run_config
    from training.data.mixture import available_sets, held_out_photos
    from training.data.reader import read_carvana
    from training.data.split import read_split
    from training.evaluate import (
        EvalConfig,
        evaluate,
        load_predictor,
        print_summary,
        run_image_size,
        summary,
        write_reports,
    )

    if args.run_dir is None and args.data_dir is None:
        parser.error("give --run-dir (its held-out data) or --data-dir (all labelled photos of a Carvana folder)")
    if args.record and args.model.suffix not in (".onnx", ".json"):
        parser.error("--record needs an exported model (.onnx or .json)")
    run_cfg = load_run_config(args.run_dir) if args.run_dir else TrainConfig(data_dir=args.data_dir)
    carvana = read_carvana(args.data_dir or run_cfg.data_dir)
    if args.run_dir is not None and args.data_dir is None:
        _, carvana = read_split(args.run_dir / "split.json", carvana)
    names = args.sets.split(",") if args.sets else (available_sets(run_cfg) if args.data_dir is None else ["carvana"])
    predictor = load_predictor(args.model, flip_tta=args.flip_tta, threads=args.threads, run_dir=args.run_dir)
    if args.image_size:
        size = args.image_size
    elif hasattr(predictor, "input_size"):  # an exported model: its manifest's (square) input
        size = predictor.input_size[0]
    else:  # a checkpoint: the size its run trained at
        size = run_image_size(args.run_dir or args.model.parent)
    cfg = EvalConfig(
        size,
        args.threshold,
        original_resolution=not args.no_original,
        quality=args.quality,
        subject=args.subject,
        **{rule: getattr(args, rule) for rule in SUBJECT_RULES},
    )
    reports, extras = {}, {}
    for name in names:
        reports[name], extras[name] = evaluate(predictor, held_out_photos(run_cfg, carvana, name), cfg, args.cache_dir)
        reports[name].update(model=str(args.model), flip_tta=bool(predictor.flip_tta))
    out = args.out or ((args.run_dir / "eval") if args.run_dir else Path("eval"))
    write_reports(reports, extras, out, cfg.threshold)
    print_summary(reports)
    print(f"report: {out / 'report.json'}  examples: {out}/examples_<set>.png")
    if args.record:
        from carmask.manifest import load_manifest

        manifest = load_manifest(args.model.with_suffix(".json"))
        manifest.metrics = {**manifest.metrics, **summary(reports)}  # figures of other kinds (glass) stay
        manifest.save(manifest.path)
        print(f"recorded the figures in {manifest.path}")


def export_main(argv: list[str] | None = None) -> None:
    task, argv = _task(argv)
    if task == "clouds":
        from training.clouds.cli import export_main as clouds_export

        return clouds_export(argv)
    parser = argparse.ArgumentParser(
        prog="carmask-export",
        description="Export a Keras checkpoint to ONNX (tf2onnx), check it against Keras, time it, and write "
        "models/<name>.onnx with its manifest models/<name>.json.",
    )
    parser.add_argument("checkpoint", type=Path, help="e.g. runs/unet/best.keras")
    parser.add_argument("--out-dir", type=Path, default=Path("models"))
    parser.add_argument("--name", default="carmask-v2")
    parser.add_argument("--version", default="2.6.0")
    parser.add_argument("--run-dir", type=Path, help="run folder for the training summary (default: checkpoint's)")
    parser.add_argument("--report", type=Path, help="carmask-evaluate report.json to record as the metrics")
    parser.add_argument("--image-size", type=int, help="manifest input side (default: the run's training size)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument(
        "--aspect-range",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="photo aspects (width / height) squashed to the input; others are letterboxed to the nearest "
        "(default: squash every photo)",
    )
    parser.add_argument(
        "--flip-tta", action="store_true",
        help="served with mirrored test-time augmentation (the manifest's input.flip_tta: twice the model's time)",
    )  # fmt: skip
    parser.add_argument(
        "--subject",
        choices=SUBJECT_MODES,
        help="which marked regions served masks keep: main (the photo's car and what lies within reach of it; "
        "the default) or all (every car and speck the model marks)",
    )
    _subject_rule_flags(parser, "with --subject main (carmask.subject; default: off): ")
    parser.add_argument(
        "--refine",
        choices=REFINE_METHODS,
        default="guided",
        help="edge-aware refinement of served probabilities before upsampling: guided (a guided filter on the "
        "model's input, radius 2, eps 1e-3 at the model's size; the default) or none",
    )
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max |ONNX - Keras| allowed")
    parser.add_argument(
        "--int8", action="store_true", help="also write <name>-int8.onnx, calibrated on 64 training photos of the run"
    )
    args = parser.parse_args(argv)

    from training.export import export

    metrics = json.loads(args.report.read_text())["summary"] if args.report else {}
    manifest = export(
        args.checkpoint,
        args.out_dir,
        args.name,
        args.version,
        image_size=args.image_size,
        run_dir=args.run_dir,
        metrics=metrics,
        threshold=args.threshold,
        opset=args.opset,
        tolerance=args.tolerance,
        aspect_range=args.aspect_range,
        subject=args.subject,
        rules={rule: getattr(args, rule) for rule in SUBJECT_RULES},
        refine=args.refine,
        flip_tta=args.flip_tta,
    )
    print(f"wrote {manifest.model_path} and {manifest.path}")
    print(f"  ONNX vs Keras max |diff| {manifest.architecture['onnx_vs_keras_max_abs_diff']:.2e}")
    print(f"  latency (1 image, {manifest.speed['threads']} threads): {manifest.speed['median_ms_one_image']} ms")
    if args.int8:
        quantized = _export_int8(manifest, args.run_dir or args.checkpoint.parent, manifest.input.size[0])
        print(
            f"wrote {quantized.model_path}: {quantized.speed['median_ms_one_image']} ms; "
            f"evaluate it with carmask-evaluate {quantized.model_path} --run-dir RUN --record"
        )


def _export_int8(manifest, run_dir: Path, image_size: int):
    from training.config import TrainConfig
    from training.data.cache import load_arrays
    from training.data.reader import read_carvana
    from training.data.split import read_split
    from training.export import measure_latency
    from training.quantize import quantize_int8

    config = json.loads((run_dir / "config.json").read_text())
    train, _ = read_split(run_dir / "split.json", read_carvana(Path(config["data_dir"])))
    cache = Path(config.get("cache_dir") or TrainConfig().cache_dir)
    images, _ = load_arrays(train, (image_size, image_size), cache)
    pick = np.random.default_rng(0).choice(len(images), size=min(64, len(images)), replace=False)
    quantized = quantize_int8(manifest.path, images[np.sort(pick)])
    quantized.speed = measure_latency(quantized.model_path, (image_size, image_size))
    quantized.save(quantized.path)
    return quantized
