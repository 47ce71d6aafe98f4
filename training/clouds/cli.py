"""The cloud task's command lines, reached as `carmask-train|evaluate|export --task clouds ...`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from carmask.settings import add_arguments, from_namespace
from training.clouds.config import ENV_PREFIX, HELP, CloudTrainConfig


def train_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="carmask-train --task clouds",
        description="Train a cloud U-Net on L8 Biome patches (clear / thin cloud / thick cloud / shadow). Writes "
        "last.keras (and best.keras with a validation split), log.csv, config.json; --cross-validate trains one "
        "model per fold of held-out biomes (--folds) and writes cv_report.json.",
    )
    add_arguments(parser, CloudTrainConfig, ENV_PREFIX, HELP)
    cfg = from_namespace(CloudTrainConfig, parser.parse_args(argv))
    from training.clouds.train import cross_validate, train

    cross_validate(cfg) if cfg.cross_validate else train(cfg)


def evaluate_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="carmask-evaluate --task clouds",
        description="Score a cloud checkpoint (.keras) or exported model (.onnx/.json) on L8 Biome patches: per-class "
        "IoU, confusion matrix, cloud IoU (thin + thick), accuracy, cloud-cover error per patch with its spread.",
    )
    parser.add_argument("model", type=Path, help="runs/clouds/last.keras or models/<name>.onnx")
    parser.add_argument("--data-dir", type=Path, default=CloudTrainConfig.data_dir)
    parser.add_argument("--splits", default="test", help="comma-separated from train, val, test (default: test)")
    parser.add_argument("--out", type=Path, help="report.json goes here (default: <checkpoint folder>/eval or ./eval)")
    parser.add_argument("--record", action="store_true", help="write the figures into the ONNX model's manifest")
    parser.add_argument("--chips", type=Path, help="score ukis-csmask's cross-sensor chips (<sensor>.npz in this "
                        "folder) instead of L8 Biome splits; recorded as cross_sensor_chips")  # fmt: skip
    args = parser.parse_args(argv)

    from training.clouds.data import read_l8_biome
    from training.clouds.evaluate import headline, print_report
    from training.clouds.train import KerasPatchPredictor, evaluate_predictor
    from training.evaluate import run_normalisation

    if args.record and args.model.suffix not in (".onnx", ".json"):
        parser.error("--record needs an exported model (.onnx or .json)")
    splits = ("cross_sensor_chips",) if args.chips else tuple(s for s in args.splits.split(",") if s)
    if args.model.suffix in (".onnx", ".json"):
        from carmask.clouds.segmenter import PatchSegmenter

        predictor = PatchSegmenter(args.model.with_suffix(".json"), providers=["CPUExecutionProvider"])
        bands = tuple(predictor.band_names)
    else:
        predictor = KerasPatchPredictor(args.model, run_normalisation(args.model.parent))
        bands = tuple(json.loads((args.model.parent / "config.json").read_text())["band_names"])
    if args.chips:
        from training.clouds.chips import evaluate_on_chips, read_chips

        report = evaluate_on_chips(predictor, read_chips(args.chips), bands)
    else:
        report, _ = evaluate_predictor(predictor, read_l8_biome(args.data_dir, splits), bands)
    report.update(model=str(args.model), splits=list(splits))
    out = args.out or (args.model.parent / "eval" if args.model.suffix == ".keras" else Path("eval"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print_report("+".join(splits), report)
    for row in report["per_patch"]:
        iou = "  n/a " if row["cloud_iou"] is None else f"{row['cloud_iou']:.4f}"
        print(f"  {row['patch']:24} cloud IoU {iou}  cover {row['cloud_cover_true_pct']:6.2f} % true, "
              f"{row['cloud_cover_pred_pct']:6.2f} % predicted")  # fmt: skip
    print(f"report: {out / 'report.json'}")
    if args.record:
        from carmask.manifest import load_manifest

        manifest = load_manifest(args.model.with_suffix(".json"))
        manifest.metrics["+".join(splits)] = headline(report)
        manifest.save(manifest.path)
        print(f"recorded the figures in {manifest.path}")


def export_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="carmask-export --task clouds",
        description="Export a cloud checkpoint to ONNX with a multi-class manifest (bands, classes, colours). "
        "Several checkpoints (same bands and normalisation) export as one graph averaging their probabilities.",
    )
    parser.add_argument("checkpoint", type=Path, nargs="+", help="e.g. runs/clouds/last.keras")
    parser.add_argument("--out-dir", type=Path, default=Path("models"))
    parser.add_argument("--name", default="carmask-clouds")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--run-dir", type=Path, help="run folder of a single checkpoint (default: its folder)")
    parser.add_argument(
        "--max-side", type=int, default=512, help="largest patch side accepted (a 512x512 patch peaks at ~220 MB)"
    )
    parser.add_argument("--aliases", default="clouds", help="other names the service answers to, comma-separated")
    args = parser.parse_args(argv)

    from training.clouds.export import export_clouds

    aliases = tuple(a.strip() for a in args.aliases.split(",") if a.strip())
    if args.run_dir and len(args.checkpoint) > 1:
        parser.error("--run-dir is for a single checkpoint; an ensemble's members are read from their own folders")
    manifest = export_clouds(args.checkpoint, args.out_dir, args.name, args.version, args.run_dir,
                             max_side=args.max_side, aliases=aliases)  # fmt: skip
    print(f"wrote {manifest.model_path} and {manifest.path}")
    print(f"  ONNX vs Keras max |diff| {manifest.architecture['onnx_vs_keras_max_abs_diff']:.2e}")
    print(
        f"  latency (1 patch 256x256, {manifest.speed['threads']} threads): {manifest.speed['median_ms_one_image']} ms"
    )
