"""Export a cloud checkpoint to ONNX with its manifest: task, bands, normalisation, classes, colours, groups.

The conversion and the check against Keras are the car export's (training/export.py); what differs is
what the manifest says: a multi-class task whose input is named bands in physical units, fill value 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras

from carmask.clouds.sensors import sensors_for
from carmask.manifest import InputSpec, Manifest, OutputSpec
from training.clouds.bands import describe
from training.clouds.data import CLASSES, GROUPS
from training.export import INPUT_NAME, OUTPUT_NAME, convert, identity, measure_latency, verify

DATA = (
    "L8 Biome cloud validation data (USGS, Landsat-8; public domain), 256x256 patches as prepared by "
    "LK-Peng/CNN-based-Cloud-Detection-Methods (MIT)"
)


def training_summary(run_dir: Path) -> dict:
    config = json.loads((run_dir / "config.json").read_text())
    state = json.loads((run_dir / "state.json").read_text()) if (run_dir / "state.json").is_file() else {}
    keys = ("train_splits", "val_splits", "epochs", "crops_per_patch", "batch_size", "learning_rate", "loss", "crop",
            "gain", "offset", "kelvin_offset", "seed")  # fmt: skip
    return {
        "data": DATA,
        "train_patches": config["train_patches"],
        "val_patches": config["val_patches"],
        **{k: config[k] for k in keys if k in config},
        "epochs_run": state.get("epochs_run"),
        "best_epoch": state.get("best_epoch"),
        "train_minutes": state.get("train_minutes"),
    }


def export_clouds(
    checkpoint: Path,
    out_dir: Path,
    name: str,
    version: str,
    run_dir: Path | None = None,
    metrics: dict | None = None,
    opset: int = 17,
    tolerance: float = 1e-4,
    max_side: int = 512,
    aliases: tuple[str, ...] = ("clouds",),
) -> Manifest:
    """Convert, verify, time, and write `<out_dir>/<name>.onnx` and `<name>.json`."""
    run_dir = run_dir or checkpoint.parent
    config = json.loads((run_dir / "config.json").read_text())
    import training.clouds.model  # noqa: F401 - registers the index layer before loading

    model = keras.models.load_model(checkpoint, compile=False)
    depth = int(config["model"]["depth"])
    bands = tuple(config["band_names"])
    onnx_path = out_dir / f"{name}.onnx"
    convert(model, onnx_path, opset, depth)
    max_diff = verify(model, onnx_path, depth, tolerance)
    norm = config["normalisation"]
    side = 2**depth
    arch = {**config["model"], "parameters": int(model.count_params()), "opset": opset,
            "onnx_vs_keras_max_abs_diff": max_diff}  # fmt: skip
    manifest = Manifest(
        **identity(name, version, onnx_path),
        task="multiclass-segmentation",
        aliases=list(aliases),
        input=InputSpec(
            name=INPUT_NAME,
            height=256,
            width=256,
            channels=len(bands),
            scale=norm["scale"],
            mean=tuple(norm["mean"]),
            std=tuple(norm["std"]),
            bands=describe(bands),
            nodata=0.0,
            sensors=sensors_for(bands),
            multiple_of=side,
            min_side=2 * side,
            max_side=max_side,
        ),
        output=OutputSpec(name=OUTPUT_NAME, activation="softmax", classes=CLASSES, groups=GROUPS),
        architecture=arch,
        training=training_summary(run_dir),
        metrics=metrics or {},
        speed=measure_latency(onnx_path, (256, 256)),
    )
    manifest.save(out_dir / f"{name}.json")
    return manifest
