"""Scoring class maps against the L8 Biome labels: per class, per patch, and cloud cover.

Every predictor (our model, the ukis-csmask peer, the brightness threshold) hands over class maps in the
labels' class space (0 clear, 1 thin cloud, 2 thick cloud, 3 shadow); one that knows no thin cloud maps
its cloud to thick. Figures: the confusion matrix and per-class IoU over all pixels of the set, cloud IoU
(thin + thick as one class), shadow IoU, accuracy over the 4 classes and over clear / cloud / shadow,
and per patch the cloud IoU and the cloud cover error (percentage points), with their spread. Fill counts
nowhere. So few patches make every mean shaky: the report keeps the per-patch rows.
"""

from __future__ import annotations

import numpy as np

from carmask.clouds.cover import FILL, class_percentages, group_percentages
from carmask.metrics import class_iou, confusion_matrix, merged_iou
from training.clouds.data import CLASS_NAMES, CLOUD, GROUPS, IGNORE, SHADOW

THREE_CLASS = np.array([0, 1, 1, 2])  # clear, cloud (thin + thick), shadow


def _spread(values: list[float]) -> dict:
    arr = np.array([v for v in values if v is not None and not np.isnan(v)], dtype=np.float64)
    if not len(arr):
        return {"n": 0}
    return {
        "n": len(arr),
        "mean": round(float(arr.mean()), 4),
        "median": round(float(np.median(arr)), 4),
        "std": round(float(arr.std()), 4),
        "min": round(float(arr.min()), 4),
        "max": round(float(arr.max()), 4),
    }


def patch_row(name: str, biome: str, pred: np.ndarray, label: np.ndarray) -> dict:
    """One patch's figures; cloud IoU is None when neither label nor prediction has cloud."""
    valid = label != IGNORE
    conf = confusion_matrix(pred, label, len(CLASS_NAMES), valid)
    truth_pct = class_percentages(np.where(valid, label, FILL), CLASS_NAMES)
    pred_pct = class_percentages(np.where(valid, pred, FILL), CLASS_NAMES)  # predictions on fill count nowhere
    cover_true = group_percentages(truth_pct, GROUPS)["cloud_cover_pct"]
    cover_pred = group_percentages(pred_pct, GROUPS)["cloud_cover_pct"]
    cloud = merged_iou(conf, CLOUD)
    total = max(int(conf.sum()), 1)
    return {
        "patch": name,
        "biome": biome,
        "cloud_iou": None if np.isnan(cloud) else round(cloud, 4),
        "accuracy": round(float(np.trace(conf)) / total, 4),
        "cloud_cover_true_pct": round(cover_true, 2),
        "cloud_cover_pred_pct": round(cover_pred, 2),
        "cloud_cover_error_pct": round(cover_pred - cover_true, 2),
        "shadow_true_pct": round(truth_pct["shadow"], 2),
        "shadow_pred_pct": round(pred_pct["shadow"], 2),
    }


def score(class_maps: np.ndarray, labels: np.ndarray, names: list[str], biomes: list[str]) -> dict:
    """The report of one set: pooled figures, per-biome means, per-patch rows with spread."""
    valid = labels != IGNORE
    conf = confusion_matrix(class_maps, labels, len(CLASS_NAMES), valid)
    conf3 = confusion_matrix(THREE_CLASS[np.minimum(class_maps, 3)], THREE_CLASS[np.minimum(labels, 3)], 3, valid)
    ious = class_iou(conf)
    rows = [patch_row(n, b, p, t) for n, b, p, t in zip(names, biomes, class_maps, labels, strict=True)]
    errors = [abs(r["cloud_cover_error_pct"]) for r in rows]
    biome_rows: dict[str, list[dict]] = {}
    for r in rows:
        biome_rows.setdefault(r["biome"], []).append(r)
    return {
        "patches": len(rows),
        "cloud_iou": round(merged_iou(conf, CLOUD), 4),
        "shadow_iou": round(merged_iou(conf, SHADOW), 4),
        "class_iou": {n: (None if np.isnan(v) else round(float(v), 4)) for n, v in zip(CLASS_NAMES, ious, strict=True)},
        "mean_iou": round(float(np.nanmean(ious)), 4),
        "accuracy": round(float(np.trace(conf)) / max(int(conf.sum()), 1), 4),
        "accuracy_3class": round(float(np.trace(conf3)) / max(int(conf3.sum()), 1), 4),
        "cloud_cover_mae_pct": round(float(np.mean(errors)), 2),
        "cloud_cover_error_spread": _spread(errors),
        "cloud_iou_per_patch": _spread([r["cloud_iou"] for r in rows]),
        "confusion": {"rows_truth_columns_prediction": CLASS_NAMES, "pixels": conf.tolist()},
        "per_biome": {
            b: {
                "patches": len(rs),
                "cloud_iou_mean": _spread([r["cloud_iou"] for r in rs]).get("mean"),
                "cloud_cover_mae_pct": round(float(np.mean([abs(r["cloud_cover_error_pct"]) for r in rs])), 2),
            }
            for b, rs in sorted(biome_rows.items())
        },
        "per_patch": rows,
    }


HEADLINE = ("patches", "cloud_iou", "shadow_iou", "mean_iou", "accuracy", "accuracy_3class", "cloud_cover_mae_pct")


def headline(report: dict) -> dict:
    return {k: report[k] for k in HEADLINE}


def print_report(title: str, report: dict) -> None:
    iou = report["cloud_iou_per_patch"]
    err = report["cloud_cover_error_spread"]
    print(
        f"{title:28} patches {report['patches']:2d}  cloud IoU {report['cloud_iou']:.4f} (per patch median "
        f"{iou.get('median', float('nan')):.3f}, min {iou.get('min', float('nan')):.3f})  shadow IoU "
        f"{report['shadow_iou']:.4f}  acc {report['accuracy']:.4f} (3-class {report['accuracy_3class']:.4f})  "
        f"cover error {report['cloud_cover_mae_pct']:.2f} pts (max {err.get('max', float('nan')):.1f})"
    )
