"""An exported model's weights back in its Keras architecture: the shipped ONNX file as a training start.

Checkpoints (`runs/`) stay on the machine that trained them; the ONNX file in `models/` is the one copy of
a model's weights that travels with the repository. tf2onnx folds each BatchNorm into the convolution
before it (`<conv>/convolution/merged_input` with the BatchNorm's `batchnorm/sub` as the bias), or, after a
depthwise convolution, keeps it as a Mul and an Add. Walking the graph's Conv nodes gives every layer's
weights by its Keras name; each BatchNorm becomes the affine it was folded into (mean 0, variance 1 - eps,
scale and shift as exported; an all-zero bias, which tf2onnx drops, is zero), so the rebuilt model computes
what the ONNX file computes (`max_difference` checks it; `carmask-weights from-onnx` refuses otherwise). Its statistics
are not the training set's: fine-tune it with BatchNorm fixed (`carmask-train --freeze-batchnorm`).
"""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np

from carmask.manifest import load_manifest

_LAYER = re.compile(r"^[^/]+/(.+?)_1/")  # "mobile_unet_1/<layer>_1/..." -> <layer>


class OnnxImportError(ValueError):
    """The ONNX graph does not match the architecture its manifest names."""


def _layer_of(tensor_name: str) -> str | None:
    match = _LAYER.match(tensor_name)
    return match.group(1) if match else None


def _consumers(graph) -> dict[str, list]:
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def _add_term(found: dict, name: str, value: np.ndarray, layer: str) -> None:
    """A constant added after a convolution: a folded BatchNorm's shift (named after it), or the layer's bias."""
    if "batchnorm" in name:
        found.setdefault(_layer_of(name) or layer, {})["shift"] = value.reshape(-1)
    else:
        found.setdefault(layer, {})["bias"] = value.reshape(-1)


def _feeding(graph, output: str) -> list:
    """The nodes `output` depends on, in graph order: the car network alone, without a second head (glass)
    that a model may carry beside it."""
    producer = {out: node for node in graph.node for out in node.output}
    needed, todo = set(), [output]
    while todo:
        node = producer.get(todo.pop())
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            todo.extend(node.input)
    return [node for node in graph.node if id(node) in needed]


def onnx_layer_weights(onnx_path: Path) -> dict[str, dict[str, np.ndarray]]:
    """{keras layer: {"kernel"/"bias"/"scale"/"shift": array}} read from the exported graph's Conv nodes."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    users = _consumers(graph)
    found: dict[str, dict[str, np.ndarray]] = {}
    for node in _feeding(graph, "mask"):
        if node.op_type != "Conv" or node.input[1] not in constants:
            continue
        kernel = constants[node.input[1]]
        layer = _layer_of(node.name) if "/depthwise" in node.name else _layer_of(node.input[1])
        if layer is None:
            raise OnnxImportError(f"cannot tell the Keras layer of Conv {node.name} ({node.input[1]})")
        found.setdefault(layer, {})["kernel"] = kernel
        if len(node.input) > 2:  # a folded BatchNorm's shift, or the convolution's own bias
            _add_term(found, node.input[2], constants[node.input[2]], layer)
            continue
        follow = users.get(node.output[0], [])
        if len(follow) != 1 or follow[0].op_type not in ("Mul", "Add"):
            continue
        if follow[0].op_type == "Mul":  # an unfolded BatchNorm: Mul then Add
            mul = follow[0]
            scale_name = next(n for n in mul.input if n in constants)
            add = users[mul.output[0]][0]
            shift_name = next(n for n in add.input if n in constants)
            bn = _layer_of(scale_name)
            found.setdefault(bn, {})["scale"] = constants[scale_name].reshape(-1)
            found[bn]["shift"] = constants[shift_name].reshape(-1)
            continue
        shift_name = next((n for n in follow[0].input if n in constants), None)  # a bias added after the Conv
        if shift_name is not None:
            _add_term(found, shift_name, constants[shift_name], layer)
    return found


def _set_layer(layer, weights: dict[str, np.ndarray]) -> None:
    kind = type(layer).__name__
    if kind == "BatchNormalization":
        channels = layer.get_weights()[0].shape
        shift = weights.get("shift", np.zeros(channels, np.float32))  # tf2onnx drops an all-zero shift
        scale = weights.get("scale", np.ones_like(shift))
        variance = np.full_like(shift, 1.0 - layer.epsilon)  # variance + eps = 1: the affine is exact
        layer.set_weights([scale, shift, np.zeros_like(shift), variance])
        return
    kernel = weights["kernel"]  # ONNX (out, in/group, kh, kw)
    if kind == "DepthwiseConv2D":
        values = [kernel.transpose(2, 3, 0, 1)]  # (kh, kw, channels, 1)
    elif kind == "Conv2D":
        values = [kernel.transpose(2, 3, 1, 0)]  # (kh, kw, in, out)
    else:
        raise OnnxImportError(f"layer {layer.name} is a {kind}; only convolutions and BatchNorm are imported")
    if layer.use_bias:  # tf2onnx drops an all-zero bias
        values.append(weights.get("bias", np.zeros(values[0].shape[-1] if kind == "Conv2D" else 0, np.float32)))
    layer.set_weights(values)


def model_from_onnx(manifest_path: Path) -> keras.Model:
    """The Keras model of a manifest's architecture with the weights of its ONNX file."""
    from training.model import ARCHITECTURES

    manifest = load_manifest(Path(manifest_path))
    arch = dict(manifest.architecture)
    name = arch.pop("name", None)
    if name not in ARCHITECTURES:
        raise OnnxImportError(f"{manifest_path} names architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    config_cls = ARCHITECTURES[name]
    fields = {f for f in config_cls.__dataclass_fields__ if config_cls.__dataclass_fields__[f].init}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in arch.items() if k in fields}
    values["weights"] = None
    model = config_cls(**values).build()
    weights = onnx_layer_weights(manifest.model_path)
    missing = []
    for layer in model.layers:
        if not layer.weights or not layer.trainable:  # fixed layers (bilinear smoothing) keep their build values
            continue
        if layer.name not in weights:
            missing.append(layer.name)
            continue
        _set_layer(layer, weights[layer.name])
    if missing:
        raise OnnxImportError(f"{len(missing)} layers have no weights in the ONNX file: {', '.join(missing[:8])}")
    return model


def max_difference(model: keras.Model, manifest_path: Path, side: int, seed: int = 0) -> float:
    """Largest |Keras - ONNX| probability on a random photo-like input of side x side."""
    from carmask.inference import Segmenter

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (1, side, side, 3), dtype=np.uint8)
    # The graph itself, not as served: a manifest's mirrored pass would average in a flipped answer.
    segmenter = Segmenter(manifest_path, providers=["CPUExecutionProvider"], flip_tta=False)
    x = segmenter.manifest.input.normalisation.apply(pixels)
    ours = keras.ops.convert_to_numpy(model.predict_on_batch(x))[..., 0]
    return float(np.abs(ours - segmenter.probabilities(pixels)).max())
