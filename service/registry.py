"""The models a service serves, by name (or a manifest's alias): each manifest loaded once at start-up.

`CARMASK_MODEL` names the default; `CARMASK_MODELS` adds manifests or folders of manifests. The manifest's
`task` decides how answers are shaped; a task this service does not know stops start-up, loudly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from carmask.clouds.segmenter import PatchSegmenter
from carmask.inference import Segmenter
from carmask.manifest import Manifest, ManifestError, load_manifest
from carmask.segmenters import TASKS
from service.errors import APIError

AnySegmenter = Segmenter | PatchSegmenter


def manifest_paths(default: Path, extra: Iterable[Path]) -> list[Path]:
    """The default manifest first, then every manifest named or found in a named folder, each once."""
    paths = [Path(default)]
    for entry in extra:
        entry = Path(entry)
        if entry.is_dir():
            paths.extend(p for p in sorted(entry.glob("*.json")) if _is_manifest(p))
        else:
            paths.append(entry)
    unique, seen = [], set()
    for path in paths:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def _is_manifest(path: Path) -> bool:
    try:
        load_manifest(path, verify=False)
    except ManifestError:
        return False
    return True


class ModelRegistry:
    """Segmenters by model name; `get(None)` is the default model."""

    def __init__(self, segmenters: list[AnySegmenter]):
        self.segmenters: dict[str, AnySegmenter] = {}
        self.aliases: dict[str, str] = {}
        for seg in segmenters:
            name = seg.manifest.name
            if name in self.segmenters:
                first = self.segmenters[name].manifest.path
                raise ManifestError(f"two manifests name the model {name!r}: {first} and {seg.manifest.path}")
            if seg.manifest.task not in TASKS:
                raise ManifestError(f"{seg.manifest.path}: task {seg.manifest.task!r} is not served (knows {TASKS})")
            self.segmenters[name] = seg
        for seg in segmenters:
            for alias in seg.manifest.aliases:
                if alias in self.segmenters or alias in self.aliases:
                    raise ManifestError(f"{seg.manifest.path}: alias {alias!r} is already a model's name or alias")
                self.aliases[alias] = seg.manifest.name
        self.default = segmenters[0].manifest.name

    @classmethod
    def load(cls, default: Path, extra: Iterable[Path], make: Callable[[Manifest], AnySegmenter]) -> ModelRegistry:
        return cls([make(load_manifest(path)) for path in manifest_paths(default, extra)])

    @property
    def names(self) -> list[str]:
        return list(self.segmenters)

    def get(self, name: str | None) -> AnySegmenter:
        if name is None or name == "":
            return self.segmenters[self.default]
        name = self.aliases.get(name, name)
        if name not in self.segmenters:
            raise APIError(404, "unknown_model", f"no model named {name!r}; this service has {self.names}")
        return self.segmenters[name]

    def describe(self) -> list[dict]:
        return [
            {
                "name": name,
                "version": seg.manifest.version,
                "task": seg.manifest.task,
                "aliases": seg.manifest.aliases,
                "default": name == self.default,
                "provider": seg.provider,
                "flip_tta": seg.flip_tta,
                **(
                    {"bands": seg.band_names, "classes": seg.class_names, "sensors": seg.manifest.input.sensors}
                    if isinstance(seg, PatchSegmenter)
                    else {"windows": seg.glass.present, "refines": seg.refiner is not None}
                ),
            }
            for name, seg in self.segmenters.items()
        ]
