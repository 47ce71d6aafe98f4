"""The segmenter for a manifest's task: photos (binary masks) or multi-band patches (class maps).

Each task has its own segmenter class behind the same small interface (`manifest`, `provider`); callers
that load models by manifest (the service's registry, carmask-predict) ask here instead of branching.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from carmask.clouds.segmenter import PatchSegmenter
from carmask.inference import Segmenter
from carmask.manifest import Manifest, ManifestError, load_manifest

SEGMENTERS = {"binary-segmentation": Segmenter, "multiclass-segmentation": PatchSegmenter}
TASKS = tuple(SEGMENTERS)


def open_segmenter(
    manifest: str | Path | Manifest,
    providers: Sequence[str] | None = None,
    threads: int = 0,
    flip_tta: bool | None = None,
) -> Segmenter | PatchSegmenter:
    manifest = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    if manifest.task not in SEGMENTERS:
        raise ManifestError(f"{manifest.path}: task {manifest.task!r} is not served (knows {TASKS})")
    return SEGMENTERS[manifest.task](manifest, providers, threads, flip_tta)
