"""Generated test fixtures: synthetic car photos and a tiny hand-built ONNX "segmenter".

The ONNX model scores red-ness per pixel (sigmoid(20 * (2R - G - B) - 10)), so on
a photo of a red rectangle on a grey background the true mask is known exactly.
That lets tests check resizing, EXIF handling and formats without a trained net.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from carmask.manifest import InputSpec, Manifest, OutputSpec, sha256_of
from carmask.synthetic import make_carvana, red_box_photo


def encode(image: Image.Image, fmt: str = "JPEG", **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def make_red_model(directory: Path, name: str = "red", size: int = 64, layout: str = "NHWC") -> Path:
    """Write `<name>.onnx` + `<name>.json` into `directory`; returns the manifest path."""
    import onnx
    from onnx import TensorProto, helper

    weights = np.array([[40.0], [-20.0], [-20.0]], np.float32)
    bias = np.array([-10.0], np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["image", "w"], ["logit0"]),
            helper.make_node("Add", ["logit0", "b"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["mask"]),
        ],
        "red",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", "H", "W", 1])],
        initializer=[onnx.numpy_helper.from_array(weights, "w"), onnx.numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    directory.mkdir(parents=True, exist_ok=True)
    onnx_path = directory / f"{name}.onnx"
    onnx.save(model, onnx_path)
    manifest = Manifest(
        name=name,
        version="0.0.1",
        file=onnx_path.name,
        sha256=sha256_of(onnx_path),
        created="2026-01-01T00:00:00+00:00",
        input=InputSpec(layout=layout, height=size, width=size),
        output=OutputSpec(),
        threshold=0.5,
        training={"data": "none: hand-built test model"},
    )
    path = directory / f"{name}.json"
    manifest.save(path)
    return path


def rewrite_manifest(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


__all__ = ["encode", "make_carvana", "make_red_model", "red_box_photo", "rewrite_manifest"]
