"""The model manifest: what every consumer of an exported model reads.

`models/<name>.json` sits beside `models/<name>.onnx` and says how to feed the
model (size, layout, normalisation; for multi-band models the bands by name and
the fill value), how to read its output (threshold; or classes, their colours
and groups), and what it was trained on and measured at. No consumer hard-codes
these.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from carmask.glass import Glass
from carmask.preprocess import Fit, Normalisation
from carmask.refine import Refinement
from carmask.subject import Subject


class ManifestError(RuntimeError):
    """A manifest is missing, malformed, or does not match its model file."""


@dataclass
class InputSpec:
    name: str = "image"
    layout: str = "NHWC"
    height: int = 256
    width: int = 256
    dtype: str = "float32"
    channels: int = 3
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    # Multi-band models (task multiclass-segmentation): the bands in the model's order, each
    # {"name", "unit", "description"}; mean/std above are per band, scale 1. Photo models leave these empty.
    bands: list[dict[str, Any]] = field(default_factory=list)
    nodata: float | None = None  # a pixel whose every band equals this (or any band NaN) is fill: no class
    sensors: list[str] = field(default_factory=list)  # the sensor presets a request may name (carmask.clouds.sensors)
    multiple_of: int = 1  # sides are padded up to a multiple of this before the model (2**depth)
    min_side: int = 0  # patch sides accepted (0: unchecked)
    max_side: int = 0
    # Photo models: [low, high] photo aspects (width / height) squashed to the input; photos outside are
    # letterboxed to the nearest bound with the mean colour (carmask.preprocess.Fit). None: squash all.
    aspect_range: list[float] | None = None
    # Test-time augmentation: the photo also runs mirrored left-right and the two answers are averaged
    # (twice the model's time; a caller may turn it off or on for itself).
    flip_tta: bool = False

    def __post_init__(self) -> None:
        if self.aspect_range is not None:
            low, high = self.aspect_range  # a wrong count raises ValueError too
            if not 0 < low <= high:
                raise ValueError(f"aspect_range needs 0 < low <= high, got {self.aspect_range}")

    @property
    def band_names(self) -> list[str]:
        return [b["name"] for b in self.bands]

    @property
    def normalisation(self) -> Normalisation:
        return Normalisation(self.scale, tuple(self.mean), tuple(self.std))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), Pillow's order."""
        return (self.width, self.height)

    @property
    def fit(self) -> Fit:
        """How photos go into this input; letterbox padding is the colour the normalisation maps to zero."""
        fill = tuple(int(min(255, max(0, round(m / self.scale)))) for m in self.mean[:3])
        aspect = tuple(self.aspect_range) if self.aspect_range is not None else None
        return Fit(self.size, aspect, fill)


@dataclass
class OutputSpec:
    name: str = "mask"
    activation: str = "sigmoid"  # "sigmoid": probabilities; "softmax": class probabilities; "none": logits
    # Multi-class models: {"index", "name", "colour" [r, g, b]} per output channel, and named groups of
    # classes whose share of the valid pixels is reported, e.g. {"cloud": ["thin_cloud", "thick_cloud"]}.
    classes: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    # Photo models: which marked regions the mask keeps, {"mode": "main" | "all", "join", "keep_ratio"}
    # (carmask.subject.Subject); empty keeps every region, as manifests that predate it did.
    subject: dict[str, Any] = field(default_factory=dict)
    # Photo models: refinement along the car's outline, a list of stages (carmask.refine.Refinement): a
    # guided filter at the model's resolution {"method": "guided", "radius", "eps"}, then a learned one at
    # the photo's {"method": "learned", "file", "sha256", ...}; empty leaves the network's answer as it is.
    refine: dict[str, Any] | list[dict[str, Any]] = field(default_factory=dict)
    # Photo models that mark the car's glass: the second ONNX output holding it, {"name", "threshold"}
    # (carmask.glass.Glass); empty: the model has no glass output.
    windows: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.selection  # noqa: B018 - a malformed subject fails when the manifest loads, not at a request
        self.refinement  # noqa: B018 - the same for a malformed refine
        self.glass  # noqa: B018 - and for malformed windows

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.classes]

    @property
    def selection(self) -> Subject:
        return Subject(**self.subject)

    @property
    def refinement(self) -> Refinement:
        return Refinement.parse(self.refine)

    @property
    def glass(self) -> Glass:
        return Glass(**self.windows)


@dataclass
class Manifest:
    name: str
    version: str
    file: str  # ONNX file name, relative to the manifest
    sha256: str
    created: str
    source_commit: str = "unknown"
    task: str = "binary-segmentation"  # what the output means; consumers shape their answers by it
    aliases: list[str] = field(default_factory=list)  # other names the service answers to, e.g. "clouds"
    input: InputSpec = field(default_factory=InputSpec)
    output: OutputSpec = field(default_factory=OutputSpec)
    threshold: float = 0.5
    architecture: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    speed: dict[str, Any] = field(default_factory=dict)
    path: Path | None = field(default=None, repr=False, compare=False)

    @property
    def model_path(self) -> Path:
        return self.beside(self.file)

    def beside(self, name: str) -> Path:
        """A file named relative to the manifest (the model, a refiner's graph)."""
        return (self.path.parent if self.path else Path(".")) / name

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        return data

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        self.path = path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(path: str | Path, verify: bool = True) -> Manifest:
    """Read a manifest; with `verify`, check its model file exists and its sha256 matches."""
    path = Path(path)
    if path.suffix == ".onnx":
        path = path.with_suffix(".json")
    if not path.is_file():
        raise ManifestError(f"model manifest not found: {path}")
    try:
        data = json.loads(path.read_text())
        data["input"] = InputSpec(**data.get("input", {}))
        data["output"] = OutputSpec(**data.get("output", {}))
        manifest = Manifest(**data, path=path)
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise ManifestError(f"malformed manifest {path}: {exc}") from None
    if verify:
        model = manifest.model_path
        check_file(model, manifest.sha256, path)
        refiner = manifest.output.refinement.photo
        if refiner is not None:
            check_file(manifest.beside(refiner.file), refiner.sha256, path)
    return manifest


def check_file(model: Path, sha256: str, manifest_path: Path) -> None:
    """ManifestError unless `model` exists and has the hash its manifest says."""
    if not model.is_file():
        raise ManifestError(f"model file named by {manifest_path} not found: {model}")
    actual = sha256_of(model)
    if actual != sha256:
        raise ManifestError(
            f"sha256 of {model} is {actual}, but {manifest_path.name} says {sha256}: "
            "the model file and its manifest do not belong together"
        )
