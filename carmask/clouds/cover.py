"""What a class map says about a scene: each class's and each group's share of the valid pixels.

For the cloud model the groups are cloud cover (thin + thick cloud) and shadow, so
`cloud_cover_pct = 100 x cloud pixels / valid (non-fill) pixels`. Fill pixels (FILL in the class map)
count nowhere. The manifest names the classes and the groups; nothing here knows about clouds.
"""

from __future__ import annotations

import csv
import io

import numpy as np
from PIL import Image

from carmask import rle

FILL = 255  # class-map value of a pixel without data


def class_counts(class_map: np.ndarray, classes: int) -> np.ndarray:
    """Pixels per class, then fill (the last entry): what a scene's summary is made of, chunk by chunk."""
    counts = np.bincount(class_map.ravel(), minlength=256)
    return np.append(counts[:classes], counts[classes:].sum())


def class_percentages(class_map: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """{class name: percent of the valid pixels}; all 0 when no pixel is valid."""
    return _percentages(class_counts(class_map, len(class_names)), class_names)


def _percentages(counts: np.ndarray, class_names: list[str]) -> dict[str, float]:
    total = int(counts[:-1].sum())
    return {name: (100.0 * float(counts[i]) / total if total else 0.0) for i, name in enumerate(class_names)}


def group_percentages(percent: dict[str, float], groups: dict[str, list[str]]) -> dict[str, float]:
    """{'<group>_pct': percent of the valid pixels in the group's classes}."""
    return {f"{group}_pct": sum(percent[c] for c in members) for group, members in groups.items()}


def scene_summary(class_map: np.ndarray, class_names: list[str], groups: dict[str, list[str]]) -> dict:
    """Groups' and classes' shares plus the pixel counts, rounded for JSON."""
    return summary_of_counts(class_counts(class_map, len(class_names)), class_names, groups)


def summary_of_counts(counts: np.ndarray, class_names: list[str], groups: dict[str, list[str]]) -> dict:
    """scene_summary from class_counts (summed over a scene's chunks)."""
    percent = _percentages(counts, class_names)
    return {
        **{k: round(v, 4) for k, v in group_percentages(percent, groups).items()},
        "valid_pixels": int(counts[:-1].sum()),
        "fill_pixels": int(counts[-1]),
        "classes": {name: round(p, 4) for name, p in percent.items()},
    }


def class_rles(class_map: np.ndarray, class_names: list[str]) -> dict[str, str]:
    """Kaggle RLE of each class's pixels (row-major, 1-indexed)."""
    return {name: rle.encode(class_map == i) for i, name in enumerate(class_names)}


def class_png(class_map: np.ndarray, colours: list[list[int]]) -> bytes:
    """A palette PNG whose pixel values are the class indices (FILL for fill), coloured per class."""
    palette = np.zeros((256, 3), dtype=np.uint8)  # fill and unused entries: black
    for index, colour in enumerate(colours):
        palette[index] = colour
    image = Image.fromarray(class_map.astype(np.uint8), "P")
    image.putpalette(palette.ravel().tolist())
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def cover_csv(rows: list[tuple[str, dict]]) -> bytes:
    """cover.csv: a row per (file, summary): its groups' shares, valid and fill pixels, each class's share."""
    records = [{"patch": name, **{k: v for k, v in summary.items() if k != "classes"}, **summary["classes"]}
               for name, summary in rows]  # fmt: skip
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue().encode()
