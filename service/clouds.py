"""Per-patch work of the service for multi-band models: bytes -> bands -> class map -> response body.

The photo pipeline (service/pipeline.py) answers masks; a multi-class model answers the scene: each
group's share of the valid pixels (cloud_cover_pct, shadow_pct), each class's share and its RLE, or a
palette PNG of class indices. Runs in a worker thread, like the photo pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from carmask.clouds.cover import FILL, class_png, class_rles, scene_summary
from carmask.clouds.segmenter import PatchSegmenter
from service.pipeline import MaskFormat, Stopwatch

PATCH_FORMATS = (MaskFormat.rle, MaskFormat.png)


@dataclass
class PatchAnswer:
    body: bytes | dict
    width: int
    height: int
    summary: dict


def segment_patch(
    seg: PatchSegmenter, name: str, data: bytes, fmt: MaskFormat, band_order: Sequence[str] | None, timings: dict
) -> PatchAnswer:
    """One patch to its JSON (format=rle: cover, classes, RLE per class) or its class-index PNG."""
    watch = Stopwatch(timings)
    with watch.stage("decode"):
        patch = seg.read(data, band_order)
    with watch.stage("model"):
        result = seg.classify(patch)
    with watch.stage("encode"):
        m = seg.manifest
        summary = scene_summary(result.class_map, m.output.class_names, m.output.groups)
        height, width = result.class_map.shape
        if fmt is MaskFormat.png:
            body = class_png(result.class_map, [c["colour"] for c in m.output.classes])
        else:
            body = {
                "name": name,
                "model": m.name,
                "version": m.version,
                "width": width,
                "height": height,
                **summary,
                "rle": class_rles(result.class_map, m.output.class_names),
                "fill_value": FILL,
            }
    return PatchAnswer(body, width, height, summary)


def cover_header(summary: dict) -> str:
    """`cloud_cover=12.5, shadow=3.1` for the PNG answer's X-Cover header."""
    return ", ".join(f"{k.removesuffix('_pct')}={v}" for k, v in summary.items() if k.endswith("_pct"))
