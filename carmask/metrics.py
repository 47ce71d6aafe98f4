"""Segmentation metrics (NumPy): binary masks per image, their outlines (boundary F-score, the top edge's
offset), bootstrap intervals of a mean; confusion matrices and class IoU for class maps.

Kaggle's Carvana score is the mean over images of each image's Dice; pixel
accuracy and IoU are reported the same way. An image where both prediction
and truth are empty scores 1. Pixels outside `valid` (a label's ignored
region) count nowhere.
"""

from __future__ import annotations

import numpy as np


def per_image_scores(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Dice, IoU and pixel accuracy for each image of (N, H, W) binary arrays, over the `valid` pixels."""
    pred = pred.reshape(len(pred), -1).astype(bool)
    truth = truth.reshape(len(truth), -1).astype(bool)
    if valid is not None:
        valid = valid.reshape(len(valid), -1).astype(bool)
        pred, truth = pred & valid, truth & valid
    inter = np.count_nonzero(pred & truth, axis=1).astype(np.float64)
    p_sum = np.count_nonzero(pred, axis=1).astype(np.float64)
    t_sum = np.count_nonzero(truth, axis=1).astype(np.float64)
    union = p_sum + t_sum - inter
    empty = (p_sum + t_sum) == 0
    dice = np.where(empty, 1.0, 2 * inter / np.maximum(p_sum + t_sum, 1))
    iou = np.where(empty, 1.0, inter / np.maximum(union, 1))
    counted = pred.shape[1] if valid is None else np.maximum(np.count_nonzero(valid, axis=1), 1)
    wrong = np.count_nonzero(pred != truth, axis=1)
    accuracy = 1.0 - wrong / counted
    return {"dice": dice, "iou": iou, "accuracy": accuracy}


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of a single pair of 2-D masks."""
    return float(per_image_scores(pred[None], truth[None])["dice"][0])


def confusion_matrix(
    pred: np.ndarray, truth: np.ndarray, num_classes: int, valid: np.ndarray | None = None
) -> np.ndarray:
    """(num_classes, num_classes) pixel counts, rows = truth, columns = prediction, over the `valid` pixels."""
    pred, truth = np.asarray(pred).ravel(), np.asarray(truth).ravel()
    keep = (truth < num_classes) & (pred < num_classes)
    if valid is not None:
        keep &= np.asarray(valid).ravel().astype(bool)
    index = truth[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def class_iou(confusion: np.ndarray) -> np.ndarray:
    """IoU per class from a confusion matrix; NaN for a class absent from both truth and prediction."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def merged_iou(confusion: np.ndarray, members: list[int]) -> float:
    """IoU of a union of classes taken as one (e.g. thin + thick cloud as cloud); NaN when absent from both."""
    inside = np.zeros(len(confusion), dtype=bool)
    inside[members] = True
    tp = confusion[np.ix_(inside, inside)].sum()
    union = confusion[inside].sum() + confusion[:, inside].sum() - tp
    return float(tp / union) if union else float("nan")


def _boundary(mask: np.ndarray) -> np.ndarray:
    """The mask's inner boundary: its pixels with a 4-neighbour outside it (the frame's edge is not one)."""
    m = np.pad(mask.astype(bool), 1, mode="edge")
    inner = m[1:-1, 1:-1]
    return inner & ~(m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:])


def boundary_f_score(pred: np.ndarray, truth: np.ndarray, tolerance: int = 2) -> float:
    """Boundary F-score (Csurka et al. 2013; DAVIS's F): precision = share of the predicted outline within
    `tolerance` px of the true one, recall the reverse. Both empty: 1; one empty: 0."""
    import cv2

    pb, tb = _boundary(pred), _boundary(truth)
    if not pb.any() and not tb.any():
        return 1.0
    if not pb.any() or not tb.any():
        return 0.0
    # Distance of every pixel to the nearest outline pixel of the other mask (L2, exact within 5x5 masks).
    dist_t = cv2.distanceTransform((~tb).astype(np.uint8), cv2.DIST_L2, 5)
    dist_p = cv2.distanceTransform((~pb).astype(np.uint8), cv2.DIST_L2, 5)
    precision = float(np.mean(dist_t[pb] <= tolerance))
    recall = float(np.mean(dist_p[tb] <= tolerance))
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def top_edge_offset(pred: np.ndarray, truth: np.ndarray) -> float:
    """Median over the columns that both masks reach of (first predicted car row - first true car row), in
    pixels: positive when the mask's top edge lies below the truth's (a roof eroded), negative above it.
    NaN when no column has car in both."""
    both = pred.any(axis=0) & truth.any(axis=0)
    if not both.any():
        return float("nan")
    first_pred = np.argmax(pred[:, both], axis=0)
    first_truth = np.argmax(truth[:, both], axis=0)
    return float(np.median(first_pred.astype(np.int64) - first_truth))


def bootstrap_interval(
    values: np.ndarray, rounds: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (resampling them with replacement)."""
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (rounds, len(values)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)
