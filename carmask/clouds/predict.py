"""`carmask-predict --model <multi-band model>`: patches on disk to class maps and cloud cover, offline.

For each patch (TIFF or .npy; folders are scanned for .tif, .tiff, .npy) it writes `<patch>_classes.png`
(a palette PNG of class indices, 255 fill) or `<patch>_classes.json` (cover, classes, RLE per class), and
one `cover.csv` for the whole run: a row per patch with each group's and class's share of the valid pixels.
An unreadable patch, or one whose bands or size do not fit, is reported and skipped; the run goes on.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from carmask.clouds.cover import class_png, class_rles, scene_summary
from carmask.clouds.patches import PatchError
from carmask.clouds.segmenter import PatchSegmenter
from carmask.files import PATCH_FORMATS, PredictStats, output_path, write_atomic


def predict_patches(
    segmenter: PatchSegmenter,
    patches: list[Path],
    fmt: str = "mask",
    out_dir: Path | None = None,
    root: Path | None = None,
    band_order: Sequence[str] | None = None,
    progress: bool = True,
) -> tuple[PredictStats, Path | None]:
    """Classify `patches`, write one output each and cover.csv; returns the stats and the CSV's path."""
    if fmt not in PATCH_FORMATS:
        raise ValueError(f"format {fmt!r} is for photo models; a multi-band model writes {sorted(PATCH_FORMATS)}")
    m = segmenter.manifest
    names, colours = m.output.class_names, [c["colour"] for c in m.output.classes]
    stats, rows = PredictStats(), []
    for path in tqdm(patches, unit="patch", disable=not progress):
        try:
            result = segmenter.segment(path, band_order)
        except (PatchError, OSError) as exc:
            stats.failed[str(path)] = str(exc) or type(exc).__name__
            continue
        summary = scene_summary(result.class_map, names, m.output.groups)
        if fmt == "mask":
            body = class_png(result.class_map, colours)
        else:
            body = json.dumps({"name": path.name, **summary, "rle": class_rles(result.class_map, names)}).encode()
        target = output_path(path, fmt, out_dir, root, PATCH_FORMATS)
        write_atomic(target, body)
        stats.written.append(target)
        rows.append({"patch": str(path), **{k: v for k, v in summary.items() if k != "classes"}, **summary["classes"]})
    if not rows:
        return stats, None
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    csv_path = (out_dir or Path(patches[0]).parent) / "cover.csv"
    write_atomic(csv_path, buf.getvalue().encode())
    return stats, csv_path
