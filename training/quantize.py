"""Static int8 quantization of an exported model (onnxruntime QDQ), calibrated on real photos.

Produces `<name>-int8.onnx` with its own manifest; `carmask-evaluate` and the
latency benchmark then say whether it holds its Dice and how much faster it is.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from carmask.manifest import Manifest, load_manifest, sha256_of


class _Calibration:
    """onnxruntime CalibrationDataReader over (N, H, W, 3) uint8 images."""

    def __init__(self, manifest: Manifest, images: np.ndarray, batch: int = 8):
        x = manifest.input.normalisation.apply(images)
        self.batches = iter([{manifest.input.name: x[i : i + batch]} for i in range(0, len(x), batch)])

    def get_next(self):
        return next(self.batches, None)


def quantize_int8(manifest_path: Path, images: np.ndarray, suffix: str = "-int8") -> Manifest:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = load_manifest(manifest_path)
    target = source.model_path.with_name(source.model_path.stem + suffix + ".onnx")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source.model_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(target),
            _Calibration(source, images),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    manifest = dataclasses.replace(
        source,
        name=source.name + suffix,
        file=target.name,
        sha256=sha256_of(target),
        metrics={},
        speed={},
        architecture={**source.architecture, "quantization": "int8 static QDQ, per-channel weights"},
    )
    manifest.save(target.with_suffix(".json"))
    return manifest
