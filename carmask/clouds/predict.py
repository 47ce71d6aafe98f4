"""`carmask-predict --model <multi-band model>`: scenes and patches on disk to class maps and cloud cover, offline.

For each input (TIFF or .npy; folders are scanned for .tif, .tiff, .npy) it writes `<name>_classes.tif`
(format geotiff, the default: a GeoTIFF of any size, tiled through the model in bounded memory, with the
input's CRS and transform; carmask.clouds.scene), `<name>_classes.png` (a palette PNG of class indices, 255
fill; patches up to the model's largest side) or `<name>_classes.json` (cover, classes, RLE per class), and
one `cover.csv` for the whole run: a row per input with each group's and class's share of the valid pixels.
An unreadable input, or one whose bands, values or size do not fit, is reported and skipped; the run goes on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from carmask.clouds.cover import class_png, class_rles, cover_csv, scene_summary
from carmask.clouds.patches import PatchError, PatchTooLargeError
from carmask.clouds.scene import Tiling, segment_scene
from carmask.clouds.segmenter import PatchSegmenter
from carmask.clouds.sensors import BandInput
from carmask.files import PATCH_FORMATS, PredictStats, output_path, write_atomic


def predict_patches(
    segmenter: PatchSegmenter,
    patches: list[Path],
    fmt: str | None = None,
    out_dir: Path | None = None,
    root: Path | None = None,
    band_input: BandInput | Sequence[str] | None = None,
    progress: bool = True,
    tiling: Tiling | None = None,
) -> tuple[PredictStats, Path | None]:
    """Classify `patches`, write one output each and cover.csv; returns the stats and the CSV's path.

    `fmt` None: a GeoTIFF class map for each TIFF, a class PNG for each .npy (it has no georeferencing).
    """
    if fmt is not None and fmt not in PATCH_FORMATS:
        raise ValueError(f"format {fmt!r} is for photo models; a multi-band model writes {sorted(PATCH_FORMATS)}")
    stats, rows = PredictStats(), []
    band_input = BandInput.of(band_input)
    for path in tqdm(patches, unit="file", disable=not progress):
        kind = fmt or ("mask" if path.suffix.lower() == ".npy" else "geotiff")
        target = output_path(path, kind, out_dir, root, PATCH_FORMATS)
        try:
            if kind == "geotiff":
                summary = _scene(segmenter, path, target, band_input, tiling, progress)
            else:
                summary = _patch(segmenter, path, target, kind, band_input)
        except (PatchError, OSError) as exc:
            stats.failed[str(path)] = str(exc) or type(exc).__name__
            continue
        stats.written.append(target)
        rows.append((str(path), summary))
    if not rows:
        return stats, None
    csv_path = (out_dir or Path(patches[0]).parent) / "cover.csv"
    write_atomic(csv_path, cover_csv(rows))
    return stats, csv_path


def _scene(seg: PatchSegmenter, path: Path, target: Path, band_input: BandInput, tiling, progress: bool) -> dict:
    if path.suffix.lower() == ".npy":
        raise PatchError("a .npy array has no georeferencing: use --format mask or rle for it")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tqdm(unit="row", desc=path.name, leave=False, disable=not progress) as bar:

        def rows_done(row: int) -> None:
            bar.update(row - bar.n)

        return segment_scene(seg, path, target, band_input, tiling, rows_done)


def _patch(seg: PatchSegmenter, path: Path, target: Path, fmt: str, band_input: BandInput) -> dict:
    m = seg.manifest
    try:
        result = seg.segment(path, band_input)
    except PatchTooLargeError as exc:
        raise PatchError(f"{str(exc).partition(';')[0]}; --format geotiff takes scenes of any size") from None
    summary = scene_summary(result.class_map, m.output.class_names, m.output.groups)
    if fmt == "mask":
        body = class_png(result.class_map, [c["colour"] for c in m.output.classes])
    else:
        rles = class_rles(result.class_map, m.output.class_names)
        body = json.dumps({"name": path.name, **summary, "rle": rles}).encode()
    write_atomic(target, body)
    return summary
