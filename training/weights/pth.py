"""Read a PyTorch `.pth` state dict into NumPy arrays, without torch.

Both of torch.save's formats are understood:
- the zip format (torch >= 1.6): `<archive>/data.pkl` plus one raw file per storage under `<archive>/data/`;
- the legacy format: five pickles in a row (magic number, protocol, system info, the object, storage keys),
  then each storage as an int64 element count followed by its raw little-endian bytes.

Only the classes a state dict needs are allowed out of the pickle (tensors, storages, OrderedDict), so a
checkpoint cannot run code while it is read.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class PthError(ValueError):
    """The file is not a PyTorch checkpoint this reader understands."""


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage:
    """A storage whose bytes arrive after the pickle (legacy) or from the zip (new format)."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype, self.numel = dtype, numel
        self.array: np.ndarray | None = None


class _LazyTensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        flat = self.storage.array
        if flat is None:
            raise PthError("a tensor's storage was never read")
        if not self.size:
            return flat[self.offset].copy()
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.size, strides=[s * item for s in self.stride]
        )
        return np.array(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    return _LazyTensor(storage, storage_offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict[str, _Storage]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise PthError(f"refusing to load {module}.{name} from a checkpoint (only tensors and dicts are allowed)")

    def persistent_load(self, saved_id):
        typename, storage_type, key, _location, numel, *rest = saved_id
        if typename != "storage" or not isinstance(storage_type, _StorageType):
            raise PthError(f"unexpected persistent id {saved_id[:2]!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, numel)
        storage = self.storages[key]
        view = rest[0] if rest else None
        if view:  # legacy storage views: (view_key, offset, size) into the root storage
            raise PthError("storage views (torch < 0.4 checkpoints) are not supported")
        return storage


def _load_zip(path: Path) -> tuple[object, dict[str, _Storage]]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl = next((n for n in names if n.endswith("data.pkl")), None)
        if pkl is None:
            raise PthError(f"{path}: zip without data.pkl is not a PyTorch checkpoint")
        prefix = pkl[: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        obj = _Unpickler(io.BytesIO(archive.read(pkl)), storages).load()
        for key, storage in storages.items():
            raw = archive.read(f"{prefix}data/{key}")
            storage.array = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"), count=storage.numel)
    return obj, storages


def _load_legacy(path: Path) -> tuple[object, dict[str, _Storage]]:
    with open(path, "rb") as fh:
        try:
            magic = pickle.load(fh)
        except Exception as exc:  # noqa: BLE001 - any failure means "not a checkpoint"
            raise PthError(f"{path}: not a PyTorch checkpoint ({exc})") from None
        if magic != LEGACY_MAGIC:
            raise PthError(f"{path}: not a PyTorch checkpoint (bad magic number)")
        pickle.load(fh)  # protocol version
        pickle.load(fh)  # system info (endianness, type sizes)
        storages: dict[str, _Storage] = {}
        obj = _Unpickler(fh, storages).load()
        keys = pickle.load(fh)
        for key in keys:
            storage = storages[key]
            count = int(np.frombuffer(fh.read(8), "<i8")[0])
            raw = fh.read(count * storage.dtype.itemsize)
            if len(raw) != count * storage.dtype.itemsize:
                raise PthError(f"{path}: truncated (storage {key} is short)")
            storage.array = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"), count=count)
    return obj, storages


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """{parameter name: array} of a `.pth` state dict (or of a dict holding one under 'state_dict')."""
    path = Path(path)
    if not path.is_file():
        raise PthError(f"no such checkpoint: {path}")
    obj, _ = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise PthError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    return {k: v.to_numpy() for k, v in obj.items() if isinstance(v, _LazyTensor)}
