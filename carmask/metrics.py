"""Segmentation metrics on binary masks, per image (NumPy).

Kaggle's Carvana score is the mean over images of each image's Dice; pixel
accuracy and IoU are reported the same way. An image where both prediction
and truth are empty scores 1.
"""

from __future__ import annotations

import numpy as np


def per_image_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Dice, IoU and pixel accuracy for each image of (N, H, W) binary arrays."""
    pred = pred.reshape(len(pred), -1).astype(bool)
    truth = truth.reshape(len(truth), -1).astype(bool)
    inter = np.count_nonzero(pred & truth, axis=1).astype(np.float64)
    p_sum = np.count_nonzero(pred, axis=1).astype(np.float64)
    t_sum = np.count_nonzero(truth, axis=1).astype(np.float64)
    union = p_sum + t_sum - inter
    empty = (p_sum + t_sum) == 0
    dice = np.where(empty, 1.0, 2 * inter / np.maximum(p_sum + t_sum, 1))
    iou = np.where(empty, 1.0, inter / np.maximum(union, 1))
    accuracy = np.count_nonzero(pred == truth, axis=1) / pred.shape[1]
    return {"dice": dice, "iou": iou, "accuracy": accuracy}


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of a single pair of 2-D masks."""
    return float(per_image_scores(pred[None], truth[None])["dice"][0])
