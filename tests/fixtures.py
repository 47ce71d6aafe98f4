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


def save_graph(graph, directory: Path, name: str) -> Path:
    """An ONNX graph as `<directory>/<name>.onnx` (opset 17, IR 8: what this onnxruntime reads)."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    directory.mkdir(parents=True, exist_ok=True)
    onnx_path = directory / f"{name}.onnx"
    onnx.save(model, onnx_path)
    return onnx_path


def fixture_identity(name: str, onnx_path: Path) -> dict:
    return {"name": name, "version": "0.0.1", "file": onnx_path.name, "sha256": sha256_of(onnx_path),
            "created": "2026-01-01T00:00:00+00:00"}  # fmt: skip


def make_red_model(
    directory: Path, name: str = "red", size: int = 64, layout: str = "NHWC", aspect_range: list | None = None
) -> Path:
    """Write `<name>.onnx` + `<name>.json` into `directory`; returns the manifest path.

    Red pixels are car, anything else (the black letterbox fill included) background."""
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
    onnx_path = save_graph(graph, directory, name)
    manifest = Manifest(
        **fixture_identity(name, onnx_path),
        input=InputSpec(layout=layout, height=size, width=size, aspect_range=aspect_range),
        output=OutputSpec(),
        threshold=0.5,
        training={"data": "none: hand-built test model"},
    )
    path = directory / f"{name}.json"
    manifest.save(path)
    return path


def glass_car_photo(width: int = 480, height: int = 320) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """A red car box with a blue window on a grey photo: (image, car mask, window mask), 0/1."""
    image, car = red_box_photo(width, height)
    arr = np.asarray(image).copy()
    rows, cols = np.flatnonzero(car.any(1)), np.flatnonzero(car.any(0))
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    y0, x0 = rows[0] + h // 8, cols[0] + w // 4
    window = np.zeros_like(car)
    window[y0 : y0 + h // 3, x0 : x0 + w // 2] = 1
    arr[window > 0] = (30, 40, 220)
    return Image.fromarray(arr), car, window


def make_glass_model(directory: Path, name: str = "glassy", size: int = 64) -> Path:
    """A hand-built car model with a glass output: red or blue pixels are car, blue ones its glass.

    Two outputs as `carmask-glass export` writes them: "mask" sigmoid(20 R - 40 G + 20 B - 10) and
    "windows" sigmoid(-20 R - 20 G + 40 B - 10), and the manifest's output.windows naming the second."""
    import onnx
    from onnx import TensorProto, helper

    weights = np.array([[20.0, -20.0], [-40.0, -20.0], [20.0, 40.0]], np.float32)
    bias = np.array([-10.0, -10.0], np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["image", "w"], ["logit0"]),
            helper.make_node("Add", ["logit0", "b"], ["logit"]),
            helper.make_node("Split", ["logit", "halves"], ["car_logit", "glass_logit"], axis=-1),
            helper.make_node("Sigmoid", ["car_logit"], ["mask"]),
            helper.make_node("Sigmoid", ["glass_logit"], ["windows"]),
        ],
        "glassy",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", "H", "W", 3])],
        [
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", "H", "W", 1]),
            helper.make_tensor_value_info("windows", TensorProto.FLOAT, ["N", "H", "W", 1]),
        ],
        initializer=[
            onnx.numpy_helper.from_array(weights, "w"),
            onnx.numpy_helper.from_array(bias, "b"),
            onnx.numpy_helper.from_array(np.array([1, 1], np.int64), "halves"),
        ],
    )
    onnx_path = save_graph(graph, directory, name)
    manifest = Manifest(
        **fixture_identity(name, onnx_path),
        input=InputSpec(height=size, width=size),
        output=OutputSpec(windows={"name": "windows", "threshold": 0.5}),
        threshold=0.5,
        training={"data": "none: hand-built test model"},
    )
    path = directory / f"{name}.json"
    manifest.save(path)
    return path


CLOUD_BANDS = ("blue", "green", "red", "nir")
CLOUD_CLASSES = ["clear", "thin_cloud", "thick_cloud", "shadow"]


def make_cloud_model(directory: Path, name: str = "clouds", nodata: float | None = 0.0) -> Path:
    """A hand-built multi-class model over 4 bands: each pixel's class is the index of its largest band.

    softmax(10 x bands), so a patch whose band 2 is largest in a region is thick cloud there: tests know
    every pixel's answer. The manifest is what carmask-export --task clouds writes (bands, classes, groups).
    """
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["image", "k"], ["logit"]),
            helper.make_node("Softmax", ["logit"], ["mask"], axis=-1),
        ],
        "largest-band",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", "H", "W", 4])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", "H", "W", 4])],
        initializer=[onnx.numpy_helper.from_array(np.array(10.0, np.float32), "k")],
    )
    onnx_path = save_graph(graph, directory, name)
    manifest = Manifest(
        **fixture_identity(name, onnx_path),
        task="multiclass-segmentation",
        input=InputSpec(
            height=64,
            width=64,
            channels=4,
            scale=1.0,
            mean=(0.0,) * 4,
            std=(1.0,) * 4,
            bands=[{"name": b, "unit": "reflectance"} for b in CLOUD_BANDS],
            nodata=nodata,
            multiple_of=16,
            min_side=16,
            max_side=256,
        ),
        output=OutputSpec(
            activation="softmax",
            classes=[{"index": i, "name": n, "colour": [i * 60, i * 60, 255]} for i, n in enumerate(CLOUD_CLASSES)],
            groups={"cloud_cover": ["thin_cloud", "thick_cloud"], "shadow": ["shadow"]},
        ),
        training={"data": "none: hand-built test model"},
    )
    path = directory / f"{name}.json"
    manifest.save(path)
    return path


def cloud_patch(height: int = 64, width: int = 64, fill_rows: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A (H, W, 4) float32 patch and its class map under make_cloud_model: thick cloud top-left, thin cloud
    bottom-left, shadow in the right quarter, clear elsewhere; the first `fill_rows` rows are fill (all 0)."""
    classes = np.zeros((height, width), dtype=np.uint8)
    classes[: height // 2, : width // 2] = 2  # thick cloud
    classes[height // 2 :, : width // 4] = 1  # thin cloud
    classes[:, 3 * width // 4 :] = 3  # shadow
    patch = np.full((height, width, 4), 0.1, dtype=np.float32)
    np.put_along_axis(patch, classes[..., None].astype(np.int64), 0.9, axis=-1)
    if fill_rows:
        patch[:fill_rows] = 0.0
        classes[:fill_rows] = 255
    return patch, classes


def rewrite_manifest(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


__all__ = [
    "CLOUD_BANDS",
    "CLOUD_CLASSES",
    "cloud_patch",
    "encode",
    "make_carvana",
    "make_cloud_model",
    "make_red_model",
    "red_box_photo",
    "rewrite_manifest",
]


def add_learned_refiner(manifest_path: Path, **params) -> Path:
    """Give a photo model's manifest a learned refinement stage: a hand-built graph whose correction of the
    coarse logit is 20 (R - G) - 10 on the tiles' [-1, 1] inputs, so the refined outline snaps to a red car's
    own edge (red +30, grey -10). `params` override the stage's (tile, margin, radius, max_side, ...)."""
    import onnx
    from onnx import TensorProto, helper

    weights = np.array([[20.0], [-20.0], [0.0], [0.0]], np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["image", "w"], ["c0"]), helper.make_node("Add", ["c0", "b"], ["correction"])],
        "red_refiner",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", "H", "W", 4])],
        [helper.make_tensor_value_info("correction", TensorProto.FLOAT, ["N", "H", "W", 1])],
        initializer=[
            onnx.numpy_helper.from_array(weights, "w"),
            onnx.numpy_helper.from_array(np.array([-10.0], np.float32), "b"),
        ],
    )
    onnx_path = save_graph(graph, manifest_path.parent, manifest_path.stem + "-refine")
    data = json.loads(manifest_path.read_text())
    stage = {"method": "learned", "file": onnx_path.name, "sha256": sha256_of(onnx_path), "radius": 4, "tile": 16,
             "margin": 4, **params}  # fmt: skip
    data["output"]["refine"] = [{"method": "guided", "radius": 2, "eps": 0.001}, stage]
    manifest_path.write_text(json.dumps(data, indent=2))
    return manifest_path
