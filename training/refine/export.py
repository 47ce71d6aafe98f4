"""Shipping a refiner: its network as a second ONNX graph beside a car model, and the model's manifest gaining
the learned stage (output.refine), the refiner's recipe (training.refiner) and its architecture. The car
model's own graph is not touched: its file and hash stay."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path

import keras

from carmask.manifest import Manifest, load_manifest, sha256_of
from carmask.refine import LearnedRefine, Refinement
from training.export import convert, source_commit, verify

DEPTH = 2  # the network halves its sides twice: tiles are multiples of 4
OUTPUT = "correction"


def to_onnx(network: keras.Model, path: Path) -> float:
    """The network as ONNX at `path`; the largest |ONNX - Keras| on sample tiles (checked, ExportError past 1e-4)."""
    convert(network, path, depth=DEPTH, output_names=(OUTPUT,))
    return verify(network, path, DEPTH, output_names=(OUTPUT,))


def stage_for(run_dir: Path, onnx_path: Path, tile: int, margin: int, max_side: int) -> LearnedRefine:
    config = json.loads((run_dir / "config.json").read_text())
    return LearnedRefine(onnx_path.name, sha256_of(onnx_path), int(config["radius"]), tile, margin, max_side)


def export_refiner(
    run_dir: Path, manifest_path: Path, version: str, out_dir: Path, tile: int = 32, margin: int = 8,
    max_side: int = 2048, metrics: dict | None = None, name: str | None = None, aliases: list[str] | None = None,
) -> Manifest:  # fmt: skip
    """Write `<out>/<name>-refine.onnx` and `<out>/<name>.json`: the car model's manifest (its ONNX file shared,
    not copied; it must already be in `out_dir`) as `name` (default: the car model's own, replacing it) at
    `version`, with the learned stage after its model-resolution stage."""
    import training.refine.nets  # noqa: F401 - the custom layers, before loading

    manifest = load_manifest(manifest_path)
    config = json.loads((run_dir / "config.json").read_text())
    if config.get("coarse_sha256") != manifest.sha256:
        raise ValueError(f"{run_dir} learned to refine the model with sha256 {config.get('coarse_sha256')}, not "
                         f"{manifest.name}'s ({manifest.sha256}): retrain it on this model's answers")  # fmt: skip
    network = keras.models.load_model(run_dir / "best.keras", compile=False)
    name = name or manifest.name
    onnx_path = out_dir / f"{name}-refine.onnx"
    difference = to_onnx(network, onnx_path)
    stage = stage_for(run_dir, onnx_path, tile, margin, max_side)
    data = manifest.to_dict()
    model_stage = asdict(Refinement.parse(manifest.output.refine).model)
    data["output"]["refine"] = [model_stage, {"method": "learned", **asdict(stage)}]
    history = json.loads((run_dir / "history.json").read_text())
    best = min(history, key=lambda h: h["val_loss"])
    data.update(name=name, version=version, created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                source_commit=source_commit())  # fmt: skip
    if aliases is not None:
        data["aliases"] = aliases
    data["architecture"]["refiner"] = {
        "design": config["design"], "width": config["width"], "parameters": network.count_params(),
        "onnx_vs_keras_max_abs_diff": difference, "input": "tiles (N, H, W, 4): RGB and coarse probability in [-1, 1]",
        "output": "correction of the coarse logit (N, H, W, 1)",
    }  # fmt: skip
    described = {
        "carvana": "Kaggle Carvana train/ at full resolution, the car model's training cars only (research use)",
        "davis": f"DAVIS-2016 car sequences except {config['davis_val_sequences']} (research use)",
        "dsmlr": "DSMLR Car Parts Segmentation v2 trainingset (whole-car label; its hull ignored; no licence stated)",
    }
    data["training"]["refiner"] = {
        "data": {name: described[name] for name in config.get("sources", ",".join(described)).split(",")},
        "coarse": config["coarse_model"],
        "tiles": {
            "train": config["train_tiles"],
            "validation": config["val_tiles"],
            "side": config["crop"],
            "per_photo": config["per_photo"],
            "radius": config["radius"],
        },
        "recipe": {k: config[k] for k in ("epochs", "tiles_per_epoch", "batch_size", "learning_rate", "seed")},
        "loss": "binary cross-entropy over the band",
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "train_minutes": round(sum(h["minutes"] for h in history), 1),
    }
    if metrics:
        data["metrics"]["refiner"] = metrics
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return load_manifest(path)
