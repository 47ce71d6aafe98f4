"""Export a cloud checkpoint to ONNX with its manifest: task, bands, normalisation, classes, colours, groups.

The conversion and the check against Keras are the car export's (training/export.py); what differs is
what the manifest says: a multi-class task whose input is named bands in physical units, fill value 0.
Several checkpoints of the same bands and normalisation export as one graph averaging their class
probabilities (an ensemble: with 24 training patches, runs of other recipes or seeds disagree a lot);
the manifest's training lists each member's recipe.
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


def training_lineage(run_dirs: list[Path]) -> dict:
    """One run's summary; for an ensemble the shared data and split, then each member's recipe, flat."""
    summaries = [training_summary(d) for d in run_dirs]
    if len(summaries) == 1:
        return summaries[0]
    shared = ("data", "train_patches", "val_patches")
    return {**{k: summaries[0][k] for k in shared},
            "members": [{k: v for k, v in s.items() if k not in shared} for s in summaries]}  # fmt: skip


def load_members(checkpoints: list[Path], run_dirs: list[Path]) -> tuple[keras.Model, dict]:
    """One model (the members' average for several) and the first member's config; the members must agree
    on bands, normalisation and depth (what the manifest states once)."""
    import training.clouds.model  # noqa: F401 - registers the index layer before loading

    configs = [json.loads((d / "config.json").read_text()) for d in run_dirs]
    shared = ("band_names", "normalisation")
    for c, d in zip(configs[1:], run_dirs[1:], strict=True):
        differ = [k for k in shared if c[k] != configs[0][k]]
        differ += ["depth"] if c["model"]["depth"] != configs[0]["model"]["depth"] else []
        if differ:
            raise ValueError(f"{d}: {', '.join(differ)} differ from {run_dirs[0]}'s; an ensemble needs them equal")
    models = [keras.models.load_model(c, compile=False) for c in checkpoints]
    if len(models) == 1:
        return models[0], configs[0]
    for i, m in enumerate(models):
        m.name = f"member{i}_{m.name}"  # the graph's operation names must be unique
    image = keras.Input((None, None, len(configs[0]["band_names"])), name="image")
    average = keras.layers.Average(name="ensemble_mean")([m(image) for m in models])
    return keras.Model(image, average, name="cloud_ensemble"), configs[0]


def export_clouds(
    checkpoint: Path | list[Path],
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
    """Convert, verify, time, and write `<out_dir>/<name>.onnx` and `<name>.json` (several checkpoints: their
    average, one graph; each from its own folder)."""
    checkpoints = checkpoint if isinstance(checkpoint, list) else [checkpoint]
    run_dirs = [run_dir] if run_dir and len(checkpoints) == 1 else [c.parent for c in checkpoints]
    model, config = load_members(checkpoints, run_dirs)
    depth = int(config["model"]["depth"])
    bands = tuple(config["band_names"])
    onnx_path = out_dir / f"{name}.onnx"
    convert(model, onnx_path, opset, depth)
    max_diff = verify(model, onnx_path, depth, tolerance)
    norm = config["normalisation"]
    side = 2**depth
    arch = {**config["model"], "parameters": int(model.count_params()), "opset": opset,
            "onnx_vs_keras_max_abs_diff": max_diff, "ensemble_of": len(checkpoints)}  # fmt: skip
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
        training=training_lineage(run_dirs),
        metrics=metrics or {},
        speed=measure_latency(onnx_path, (256, 256)),
    )
    manifest.save(out_dir / f"{name}.json")
    return manifest
