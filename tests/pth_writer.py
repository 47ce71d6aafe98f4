"""Writes small PyTorch checkpoints in both of torch.save's formats, without torch, for the reader's tests.

The pickle must name `torch.FloatStorage` and `torch._utils._rebuild_tensor_v2` as torch does; stand-in
modules are registered under those names only while the pickle is written.
"""

from __future__ import annotations

import io
import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

STORAGES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage"}


@contextmanager
def _fake_torch():
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    for name in STORAGES.values():
        setattr(torch, name, type(name, (), {"__module__": "torch", "__qualname__": name}))

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield torch, utils
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class _Storage:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage: _Storage, shape: tuple, stride: tuple, rebuild):
        self.storage, self.shape, self.stride, self.rebuild = storage, shape, stride, rebuild

    def __reduce__(self):
        return (self.rebuild, (self.storage, 0, self.shape, self.stride, False, OrderedDict()))


def _graph(state: dict[str, np.ndarray], torch, utils, transposed: set[str]):
    storages, tensors = [], OrderedDict()
    for index, (name, array) in enumerate(state.items()):
        if name in transposed:  # stored column-major: the reader must honour strides
            flat = np.ascontiguousarray(array.T).reshape(-1)
            stride = tuple(int(np.prod(array.shape[:i])) for i in range(array.ndim))
        else:
            flat = np.ascontiguousarray(array).reshape(-1)
            stride = tuple(int(np.prod(array.shape[i + 1 :])) for i in range(array.ndim))
        storage = _Storage(str(index), flat)
        storages.append(storage)
        tensors[name] = _Tensor(storage, tuple(array.shape), stride, utils._rebuild_tensor_v2)
    return storages, tensors


def write_pth(path: Path, state: dict[str, np.ndarray], legacy: bool, transposed: set[str] = frozenset()) -> Path:
    """Write `state` as torch.save would (legacy or zip format)."""
    with _fake_torch() as (torch, utils):
        storages, tensors = _graph(state, torch, utils, set(transposed))
        extra = () if not legacy else (None,)  # legacy ids carry a view slot

        def persistent_id(obj):
            if isinstance(obj, _Storage):
                kind = getattr(torch, STORAGES[obj.array.dtype])
                return ("storage", kind, obj.key, "cpu", obj.array.size, *extra)
            return None

        body = io.BytesIO()
        pickler = pickle.Pickler(body, protocol=2)
        pickler.persistent_id = persistent_id
        pickler.dump(tensors)
    if legacy:
        with open(path, "wb") as fh:
            pickle.dump(0x1950A86A20F9469CFC6C, fh, protocol=2)
            pickle.dump(1001, fh, protocol=2)
            pickle.dump({"protocol_version": 1001, "little_endian": True}, fh, protocol=2)
            fh.write(body.getvalue())
            pickle.dump([s.key for s in storages], fh, protocol=2)
            for s in storages:
                fh.write(np.int64(s.array.size).tobytes())
                fh.write(s.array.astype(s.array.dtype.newbyteorder("<")).tobytes())
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("checkpoint/data.pkl", body.getvalue())
            for s in storages:
                archive.writestr(f"checkpoint/data/{s.key}", s.array.tobytes())
    return path
