"""The ONNX clean-up pass: a chain that is nearest 2x upsampling becomes a Resize, anything else stays."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from training.onnx_graph import nearest_upsampling_to_resize


def repeat_model(path, repeats: int = 2):
    """x (N, H, W, C) -> NCHW, then rows and columns repeated `repeats` times (with their shape arithmetic),
    named as tf2onnx names a Keras `up` layer's ops (its chains work on the convolutions' NCHW tensors)."""
    inits = [
        numpy_helper.from_array(np.array([3], np.int64), "axis_rows"),
        numpy_helper.from_array(np.array([4], np.int64), "axis_cols"),
        numpy_helper.from_array(np.array([1, 1, 1, repeats, 1], np.int64), "tile_rows"),
        numpy_helper.from_array(np.array([1, 1, 1, 1, repeats], np.int64), "tile_cols"),
        numpy_helper.from_array(np.array([1, 1, repeats, 1], np.int64), "rows_factor"),
        numpy_helper.from_array(np.array([1, 1, repeats, repeats], np.int64), "cols_factor"),
    ]
    p = "model/up_1/"
    nodes = [
        helper.make_node("Transpose", ["image"], ["x"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("Shape", ["x"], ["s"], name=p + "Repeat/Shape"),
        helper.make_node("Mul", ["s", "rows_factor"], ["rows_shape"], name=p + "Repeat/mul"),
        helper.make_node("Mul", ["s", "cols_factor"], ["cols_shape"], name=p + "Repeat_1/mul"),
        helper.make_node("Unsqueeze", ["x", "axis_rows"], ["r0"], name=p + "Repeat/ExpandDims"),
        helper.make_node("Tile", ["r0", "tile_rows"], ["r1"], name=p + "Repeat/Tile"),
        helper.make_node("Reshape", ["r1", "rows_shape"], ["r2"], name=p + "Repeat/Reshape_1"),
        helper.make_node("Unsqueeze", ["r2", "axis_cols"], ["c0"], name=p + "Repeat_1/ExpandDims"),
        helper.make_node("Tile", ["c0", "tile_cols"], ["c1"], name=p + "Repeat_1/Tile"),
        helper.make_node("Reshape", ["c1", "cols_shape"], ["mask"], name=p + "Repeat_1/Reshape_1"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, None, None, 3])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [None, None, None, None])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def run(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]


def test_a_nearest_upsampling_chain_becomes_one_resize_with_the_same_output(tmp_path):
    path = repeat_model(tmp_path / "up.onnx")
    x = np.random.default_rng(0).random((2, 4, 6, 3), dtype=np.float32)
    before = run(path, x)
    assert before.shape == (2, 3, 8, 12)
    assert nearest_upsampling_to_resize(path, ["up"], channels=3, step=1) == ["up"]
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops == ["Transpose", "Resize"]  # the NCHW source of the NCHW result, upsampled; the rest is gone
    assert np.array_equal(run(path, x), before)
    y = np.random.default_rng(1).random((1, 5, 3, 3), dtype=np.float32)  # another shape: still dynamic
    assert np.array_equal(run(path, y), y.repeat(2, 1).repeat(2, 2).transpose(0, 3, 1, 2))


def test_a_chain_that_is_not_2x_nearest_stays_as_it_is(tmp_path):
    path = repeat_model(tmp_path / "up3.onnx", repeats=3)
    data = path.read_bytes()
    assert nearest_upsampling_to_resize(path, ["up"], channels=3, step=1) == []
    assert path.read_bytes() == data
    assert nearest_upsampling_to_resize(path, ["other"], channels=3, step=1) == []  # no such layer's nodes
