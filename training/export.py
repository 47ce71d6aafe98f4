"""Export a Keras checkpoint to ONNX (tf2onnx) with its manifest, verified against Keras.

The ONNX graph takes float32 NHWC images of any batch, height and width
(divisible by 2**depth) named `image`, and returns sigmoid probabilities named
`mask`. Nearest upsamplings are rewritten as one Resize each (training.onnx_graph: the same outputs,
fewer nodes). The export fails loudly if onnxruntime and Keras disagree by more
than `tolerance` on sample inputs.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from dataclasses import asdict, replace
from pathlib import Path

import keras
import numpy as np

from carmask.manifest import InputSpec, Manifest, OutputSpec, sha256_of
from carmask.refine import Refine
from carmask.subject import Subject
from training.onnx_graph import nearest_upsampling_to_resize

INPUT_NAME, OUTPUT_NAME = "image", "mask"


class ExportError(RuntimeError):
    """The exported ONNX model does not reproduce the Keras model."""


def _as_list(outputs) -> list:
    return list(outputs) if isinstance(outputs, list | tuple) else [outputs]


def convert(
    model: keras.Model, path: Path, opset: int = 17, depth: int = 5, output_names: tuple[str, ...] = (OUTPUT_NAME,)
) -> list[str]:
    """Write `model` as ONNX with dynamic batch and spatial size (sides divisible by 2**depth), its outputs
    named `output_names` in order; returns the nearest-upsampling layers whose tf2onnx chains became a single
    Resize (training.onnx_graph)."""
    import tensorflow as tf
    import tf2onnx

    channels = model.inputs[0].shape[-1]
    spec = (tf.TensorSpec((None, None, None, channels), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=spec)
    def serve(image):
        return dict(zip(output_names, _as_list(model(image, training=False)), strict=True))

    path.parent.mkdir(parents=True, exist_ok=True)
    tf2onnx.convert.from_function(serve, input_signature=spec, opset=opset, output_path=str(path))
    nearest = [
        layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.UpSampling2D) and layer.interpolation == "nearest"
    ]
    return nearest_upsampling_to_resize(path, nearest, channels, 2**depth) if nearest else []


def verify(
    model: keras.Model,
    path: Path,
    depth: int,
    tolerance: float = 1e-4,
    seed: int = 0,
    output_names: tuple[str, ...] = (OUTPUT_NAME,),
) -> float:
    """Max |ONNX - Keras| over every output and sample inputs of several shapes; raises ExportError past
    `tolerance`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), outs = session.get_inputs(), [o.name for o in session.get_outputs()]
    if inp.name != INPUT_NAME or sorted(outs) != sorted(output_names):
        raise ExportError(f"ONNX names are {inp.name!r} -> {outs}, expected {INPUT_NAME!r} -> {list(output_names)}")
    rng = np.random.default_rng(seed)
    step = 2**depth
    worst = 0.0
    for batch, h, w in [(2, 16 * step, 16 * step), (1, 8 * step, 12 * step)]:
        x = rng.random((batch, h, w, inp.shape[-1]), dtype=np.float32)
        expected = [keras.ops.convert_to_numpy(e) for e in _as_list(model(x, training=False))]
        actual = session.run(list(output_names), {INPUT_NAME: x})
        for name, want, got in zip(output_names, expected, actual, strict=True):
            if got.shape != want.shape:
                raise ExportError(f"ONNX {name} shape {got.shape} != Keras {want.shape} for input {x.shape}")
            worst = max(worst, float(np.abs(got - want).max()))
    if worst > tolerance:
        raise ExportError(f"ONNX and Keras differ by {worst:.2e} (> {tolerance:.0e}); the export is wrong")
    return worst


def measure_latency(path: Path, size: tuple[int, int], threads: int = 0, runs: int = 50) -> dict:
    """Median onnxruntime latency of one image at `size`.

    threads=0 is onnxruntime's default, one thread per physical core (2 on this project's machines), as the
    service runs it. On this project's VMs the figure is bimodal (about 11 or 19 ms for the shipped model):
    at times the second core is busy elsewhere, and a 1-thread run measures 19.8 ms.
    """
    import os
    import platform

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    channels = session.get_inputs()[0].shape[-1]  # 3 for photo models, the band count for patch models
    x = np.random.default_rng(0).random((1, size[1], size[0], channels), dtype=np.float32)
    for _ in range(5):
        session.run(None, {INPUT_NAME: x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {INPUT_NAME: x})
        times.append((time.perf_counter() - start) * 1000)
    return {
        "median_ms_one_image": round(float(np.median(times)), 2),
        "p90_ms_one_image": round(float(np.percentile(times, 90)), 2),
        "threads": threads or os.cpu_count(),
        "intra_op_num_threads_setting": threads,
        "provider": "CPUExecutionProvider",
        "onnxruntime": ort.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "measured": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def identity(name: str, version: str, onnx_path: Path) -> dict:
    """The manifest fields that say which file this is and where it came from."""
    return {
        "name": name,
        "version": version,
        "file": onnx_path.name,
        "sha256": sha256_of(onnx_path),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source_commit": source_commit(),
    }


def source_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


SOURCE_DESCRIPTIONS = {
    "carvana": "Kaggle Carvana Image Masking, train/ (studio turntable photos; competition rules, research use)",
    "composite": "copy-paste: Carvana training cars pasted onto BSDS500 train/val photos (research use)",
    "dsmlr": "DSMLR Car Parts Segmentation v2, trainingset (parts = car, hull - parts ignored; no licence stated)",
    "davis": "DAVIS-2016 car sequences except the held-out ones (research use)",
    "negatives": "BSDS500 train/val photos without cars, empty masks (research use)",
    "pseudo": "Stanford Cars train photos (research use only) labelled by teacher agreement (carmask-teacher: "
    "u2netp, Apache-2.0; IS-Net by img.ly, AGPL-3.0, as a teacher only; carmask-v2 2.6.0 with flip TTA); "
    "disagreement ignored",
}


def _sources(config: dict) -> dict[str, dict]:
    from training.config import TrainConfig

    weights = TrainConfig(sources=config.get("sources", "carvana:1")).source_weights()
    return {name: {"weight": w, "data": SOURCE_DESCRIPTIONS[name]} for name, w in weights.items()}


# What a run's config.json contributes to its training summary, and what of the summary a lineage stage keeps.
CONFIG_KEYS = (
    "epochs",
    "samples_per_epoch",
    "batch_size",
    "learning_rate",
    "loss",
    "augment",
    "source_augment",
    "image_size",
    "init_from",
)
STAGE_KEYS = (
    "sources",
    "epochs_run",
    "train_minutes",
    "best_epoch",
    *(k for k in CONFIG_KEYS if k not in ("epochs", "batch_size")),
)


def _stage(info: dict, run_dir: Path | None = None) -> dict:
    """One stage of a model's lineage: its run, mixture (weights only) and schedule."""
    stage = {"run": str(run_dir)} if run_dir is not None else {}
    for key in STAGE_KEYS:
        if key in info:
            value = info[key]
            stage[key] = {n: s["weight"] for n, s in value.items()} if key == "sources" else value
    return stage


def flatten_lineage(training: dict) -> list[dict]:
    """A manifest's training lineage as a flat list of stages, oldest first (older manifests nest each
    stage's predecessor in `earlier_stage`)."""
    if "stages" in training:
        return list(training["stages"])
    earlier = training.get("earlier_stage")
    return [*(flatten_lineage(earlier) if earlier else []), _stage(training)]


def _earlier_stages(init_from: str | None, run_dir: Path) -> list[dict]:
    """The stages behind the weights a run started from: that run's own, or an imported model's lineage.json."""
    earlier = Path(init_from).parent if init_from else None
    if earlier is None or earlier == run_dir:
        return []
    if (earlier / "config.json").is_file():
        return training_summary(earlier)[0]["stages"]
    if (earlier / "lineage.json").is_file():  # written by `carmask-weights from-onnx`
        return json.loads((earlier / "lineage.json").read_text())
    return []


def training_summary(run_dir: Path) -> tuple[dict, dict]:
    """(training info, architecture) from a run folder's config.json, split.json and state.json."""
    config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    split = json.loads((run_dir / "split.json").read_text()) if (run_dir / "split.json").is_file() else {}
    state = json.loads((run_dir / "state.json").read_text()) if (run_dir / "state.json").is_file() else {}
    info = {
        "sources": _sources(config),
        "held_out": {
            "carvana": "validation cars (val_cars)",
            "dsmlr": "testset/",
            "davis": config.get("davis_val_sequences"),
            "no_car": "BSDS500 test photos",
        },
        "train_cars": len(split.get("train_cars", [])),
        "train_images": len(split.get("train_images", [])),
        "val_cars": split.get("val_cars", []),
        "val_images": len(split.get("val_images", [])),
        "split_seed": split.get("seed"),
        "epochs_run": state.get("epoch"),
        "train_minutes": round(sum(h.get("seconds", 0) for h in state.get("history", [])) / 60, 1),
        "best_epoch": state.get("best_epoch"),
        **{k: config[k] for k in CONFIG_KEYS if k in config},
    }
    own = {"run": str(run_dir), "average": config["average"]} if "average" in config else _stage(info, run_dir)
    info["stages"] = [*_earlier_stages(config.get("init_from"), run_dir), own]
    arch = config.get("model") or {"name": "unet", **{k: config[k] for k in ("base_width", "depth") if k in config}}
    arch = {k: v for k, v in arch.items() if k != "weights"}
    return info, arch


def run_input_spec(run_dir: Path, image_size: int) -> InputSpec:
    """The model's input as its run trained it: size, and the normalisation in config.json."""
    from training.evaluate import run_normalisation

    norm = run_normalisation(run_dir)
    return InputSpec(
        name=INPUT_NAME,
        layout="NHWC",
        height=image_size,
        width=image_size,
        scale=norm.scale,
        mean=tuple(norm.mean),
        std=tuple(norm.std),
    )


def export(
    checkpoint: Path,
    out_dir: Path,
    name: str,
    version: str,
    image_size: int | None = None,
    run_dir: Path | None = None,
    metrics: dict | None = None,
    threshold: float = 0.5,
    opset: int = 17,
    tolerance: float = 1e-4,
    aspect_range: tuple[float, float] | None = None,
    subject: str | None = None,
    rules: dict[str, float | None] | None = None,
    refine: str = "guided",
    flip_tta: bool = False,
) -> Manifest:
    """Convert, verify, time, and write `<out_dir>/<name>.onnx` and `<name>.json`.

    `subject` is the served masks' region selection (carmask.subject): "main" unless said otherwise, since a
    photo sent to carmask is of one car, with the optional `rules` set (same_height, prefer_whole,
    min_confidence; None or absent: off). `refine` is the served probabilities' edge-aware refinement
    (carmask.refine): "guided" (radius 2, eps 1e-3) unless said otherwise; "none" writes none. `flip_tta`:
    every consumer also runs the photo mirrored and averages (the manifest's input.flip_tta).
    """
    model = keras.models.load_model(checkpoint, compile=False)
    run_dir = run_dir or checkpoint.parent
    training, arch = training_summary(run_dir)
    training["checkpoint"] = checkpoint.name  # best.keras (best_epoch) or last.keras (epochs_run)
    image_size = image_size or int(training.get("image_size", 256))  # the size the run trained at
    depth = int(arch.get("depth", 4))
    onnx_path = out_dir / f"{name}.onnx"
    resized = convert(model, onnx_path, opset, depth)
    max_diff = verify(model, onnx_path, depth, tolerance)
    arch.update(parameters=int(model.count_params()), opset=opset, onnx_vs_keras_max_abs_diff=max_diff)
    if resized:
        arch["onnx_nearest_upsampling"] = f"Resize ({len(resized)} layers)"
    manifest = Manifest(
        **identity(name, version, onnx_path),
        input=replace(
            run_input_spec(run_dir, image_size),
            aspect_range=list(aspect_range) if aspect_range else None,
            flip_tta=flip_tta,
        ),
        output=OutputSpec(
            name=OUTPUT_NAME,
            activation="sigmoid",
            subject={  # an unset rule is left out: the manifest says only what the selection does
                k: v
                for k, v in asdict(
                    Subject(subject or "main", **{k: v for k, v in (rules or {}).items() if v is not None})
                ).items()
                if v is not None
            },
            refine=asdict(Refine(method=refine)) if refine != "none" else {},
        ),
        threshold=threshold,
        architecture=arch,
        training=training,
        metrics=metrics or {},
        speed=measure_latency(onnx_path, (image_size, image_size)),
    )
    manifest.save(out_dir / f"{name}.json")
    return manifest
