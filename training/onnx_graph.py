"""Clean-ups of tf2onnx's graph that change no output value: each nearest 2x upsampling becomes one Resize.

Keras' `UpSampling2D(interpolation="nearest")` repeats rows, then columns (`ops.repeat`), which tf2onnx
writes as Unsqueeze/Tile/Reshape pairs with their shape arithmetic and the layout transposes around them:
about 28 small nodes a layer, each of which also makes onnxruntime convert its blocked (NCHWc) layout back
and forth. One ONNX `Resize` (nearest) does the same, and onnxruntime runs it in the blocked layout.
Every replacement is checked on random inputs of two shapes before it is made: a chain that does not
reproduce nearest upsampling exactly is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Channels-first (the layout tf2onnx hands convolutions) and channels-last scales for a 2x upsampling.
SCALES = {"NCHW": (1.0, 1.0, 2.0, 2.0), "NHWC": (1.0, 2.0, 2.0, 1.0)}


@dataclass
class Chain:
    layer: str  # the Keras layer
    source: str  # the tensor it upsamples
    result: str  # the upsampled tensor its consumers read
    layout: str = ""  # which SCALES reproduce it, once checked


def _chain(graph, layer: str) -> Chain | None:
    """The tensors in and out of one upsampling layer's nodes (tf2onnx names them `<model>/<layer>_1/...`)."""
    scope = [n for n in graph.node if f"/{layer}_1/" in n.name or f"/{layer}/" in n.name]
    first = [n for n in scope if n.name.endswith("Repeat/ExpandDims")]
    last = [n for n in scope if n.name.endswith("Repeat_1/Reshape_1")]
    if len(first) != 1 or len(last) != 1:
        return None
    result = last[0].output[0]
    readers = [n for n in graph.node if result in n.input]
    if len(readers) == 1 and readers[0].op_type == "Transpose":  # tf2onnx's layout change back to NCHW
        result = readers[0].output[0]
    return Chain(layer, first[0].input[0], result)


def _check(model, chains: list[Chain], channels: int, step: int) -> list[Chain]:
    """The chains whose result is exactly the nearest 2x upsampling of their source, with its layout."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for chain in chains:
        probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(t) for t in (chain.source, chain.result))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    feed = session.get_inputs()[0].name
    rng = np.random.default_rng(0)
    ok = {chain.layer: set(SCALES) for chain in chains}
    for shape in [(2, 8 * step, 6 * step, channels), (1, 5 * step, 9 * step, channels)]:
        values = dict(zip(names, session.run(None, {feed: rng.random(shape, dtype=np.float32)}), strict=True))
        for chain in chains:
            src, out = values[chain.source], values[chain.result]
            for layout in list(ok[chain.layer]):
                axes = (2, 3) if layout == "NCHW" else (1, 2)
                up = src.repeat(2, axis=axes[0]).repeat(2, axis=axes[1]) if src.ndim == 4 else None
                if up is None or up.shape != out.shape or not np.array_equal(up, out):
                    ok[chain.layer].discard(layout)
    checked = []
    for chain in chains:
        if ok[chain.layer]:
            chain.layout = sorted(ok[chain.layer])[0]
            checked.append(chain)
    return checked


def _drop_dead_nodes(graph) -> None:
    """Remove nodes (and initializers) that no graph output depends on any more."""
    nodes = list(graph.node)
    while True:
        used = {i for n in nodes for i in n.input} | {o.name for o in graph.output}
        alive = [n for n in nodes if any(o in used for o in n.output)]
        if len(alive) == len(nodes):
            break
        nodes = alive
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def nearest_upsampling_to_resize(path: Path, layers: list[str], channels: int, step: int) -> list[str]:
    """Rewrite the ONNX file at `path` in place; returns the layers whose chain became a Resize.

    `layers` are the Keras nearest-upsampling layers, `channels` the model's input channels, `step` what
    the input sides must divide by.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    chains = _check(model, [c for c in (_chain(graph, name) for name in layers) if c], channels, step)
    if not chains:
        return []
    by_result = {c.result: c for c in chains}
    nodes = []
    for node in graph.node:
        chain = by_result.get(node.output[0])
        if chain is None:
            nodes.append(node)
            continue
        scales = numpy_helper.from_array(np.array(SCALES[chain.layout], np.float32), name=f"{chain.layer}_scales")
        graph.initializer.append(scales)
        nodes.append(
            helper.make_node(
                "Resize",
                [chain.source, "", scales.name],
                [chain.result],
                name=f"{chain.layer}_resize",
                mode="nearest",
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
            )
        )
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_dead_nodes(graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return [c.layer for c in chains]
