"""Ship the glass head: the trunk and head as one ONNX graph with two outputs, beside the car model's manifest.

The car output must stay the shipped model's: on sample inputs the new graph's `mask` has to match the
shipped ONNX file's within `tolerance`, else the export stops (the head was fitted on another trunk). The
manifest is the car model's, with the new file, version and speed, `output.windows` naming the glass output,
the head in `architecture.glass_head`, and its data, recipe and k-fold figures in `training.glass` and
`metrics.glass`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

import training.losses
import training.model.mobile_unet  # noqa: F401 - registers the custom layers the checkpoint holds
from carmask.manifest import Manifest, load_manifest
from training.export import INPUT_NAME, OUTPUT_NAME, ExportError, convert, identity, measure_latency, verify
from training.glass.head import CONTEXT_LAYER, DETAIL_LAYER
from training.glass.head import OUTPUT_NAME as GLASS_OUTPUT

DATA = {
    "dsmlr": "DSMLR Car Parts Segmentation v2, trainingset and testset: front_glass and back_glass polygons are "
    "glass; doors (side windows inside them) and the car's unlabelled hull unknown (no licence stated)",
    "user_photos": "user-photos part labels (class 4, window; from the Kaggle car-segmentation set by intelecai "
    "and Roboflow car-segmentation v1, CC BY 4.0): the glass head only, on a frozen car network; measured by "
    "k-fold, never used for the car mask",
}


def car_difference(shipped: Path, new: Path, channels: int = 3, seed: int = 0) -> float:
    """Max |mask of `new` - mask of `shipped`| over sample inputs: 0 when the car output is unchanged."""
    import onnxruntime as ort

    a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (shipped, new))
    x = np.random.default_rng(seed).normal(size=(2, 320, 320, channels)).astype(np.float32)
    return float(np.abs(a.run([OUTPUT_NAME], {INPUT_NAME: x})[0] - b.run([OUTPUT_NAME], {INPUT_NAME: x})[0]).max())


def export_glass(run_dir: Path, manifest_path: Path, version: str, out_dir: Path, tolerance: float = 1e-4) -> Manifest:
    """Write `<out_dir>/<file>` and its manifest: the car model of `manifest_path` with the head of `run_dir`."""
    base = load_manifest(manifest_path)
    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    report = json.loads((run_dir / "report.json").read_text())
    depth = int(base.architecture.get("depth", 5))
    names = (OUTPUT_NAME, GLASS_OUTPUT)
    out_dir.mkdir(parents=True, exist_ok=True)
    staged = out_dir / f".{base.file}.staged"  # the shipped file stays until the new one has passed
    convert(model, staged, int(base.architecture.get("opset", 17)), depth, names)
    try:
        max_diff = verify(model, staged, depth, tolerance, output_names=names)
        car_diff = car_difference(base.model_path, staged)
        if car_diff > tolerance:
            raise ExportError(f"the car output moved by {car_diff:.2e} from {base.model_path.name}'s: the head was "
                              "fitted on another trunk")  # fmt: skip
    except Exception:
        staged.unlink(missing_ok=True)
        raise
    target = out_dir / base.file
    staged.replace(target)
    head = model.get_layer("glass_head")
    config = report["config"]
    manifest = replace(
        base,
        **identity(base.name, version, target),
        output=replace(base.output, windows={"name": GLASS_OUTPUT, "threshold": float(config["threshold"])}),
        architecture={
            **base.architecture,
            "parameters": int(model.count_params()),
            "onnx_vs_keras_max_abs_diff": max_diff,
            "glass_head": {
                "parameters": int(head.count_params()),
                "reads": [CONTEXT_LAYER, DETAIL_LAYER],
                "car_output_max_abs_diff": car_diff,
            },
        },
        training={
            **base.training,
            "glass": {
                "data": DATA,
                "photos": report["data"],
                "recipe": {
                    k: config[k]
                    for k in ("epochs", "batch_size", "learning_rate", "user_photo_repeat", "width", "folds", "seed")
                },
                "trunk": f"{base.name} {base.version}, frozen",
            },
        },
        metrics={**base.metrics, "glass": {"user_photos_k_fold": report["k_fold"]}},
        speed=measure_latency(target, base.input.size),
        path=None,
    )
    manifest.save(out_dir / Path(base.path).name)
    return manifest
