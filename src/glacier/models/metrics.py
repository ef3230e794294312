"""Segmentation metrics with one definition for training, testing and full-scene evaluation.

IoU, precision, recall and F1 per class come from a confusion matrix (rows = reference,
columns = prediction) over valid pixels; ``iou_mean`` averages IoU over every output class,
background included — the same number Lightning logs as ``val/iou_mean``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from glacier.data.contract import IGNORE_INDEX

METRICS = ("iou", "precision", "recall", "f1")


def confusion_matrix(
    prediction: np.ndarray, truth: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """Pixel confusion matrix, ignoring pixels where either map is ``ignore_index``.

    Args:
        prediction: Predicted class map.
        truth: Reference class map (same shape).
        num_classes: Number of classes K (background included).
        ignore_index: Nodata value.

    Returns:
        (K, K) int64 counts, rows = reference, columns = prediction.
    """
    pred = np.asarray(prediction).ravel().astype(np.int64)
    true = np.asarray(truth).ravel().astype(np.int64)
    valid = (pred != ignore_index) & (true != ignore_index)
    index = true[valid] * num_classes + pred[valid]
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def metrics_from_confusion(matrix: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Per-class IoU, precision, recall, F1 and the mean IoU.

    Args:
        matrix: (K, K) confusion matrix (rows = reference).
        names: Output names, background first.

    Returns:
        ``{"iou/<name>", "precision/<name>", "recall/<name>", "f1/<name>", "iou_mean"}``; NaN
        where a denominator is 0 (a class absent from both maps), left out of the mean.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    values: dict[str, float] = {}
    ious = []
    for k, name in enumerate(names):
        tp = matrix[k, k]
        fp = matrix[:, k].sum() - tp
        fn = matrix[k, :].sum() - tp
        iou = _ratio(tp, tp + fp + fn)
        values[f"iou/{name}"] = iou
        values[f"precision/{name}"] = _ratio(tp, tp + fp)
        values[f"recall/{name}"] = _ratio(tp, tp + fn)
        values[f"f1/{name}"] = _ratio(2 * tp, 2 * tp + fp + fn)
        ious.append(iou)
    finite = [v for v in ious if not math.isnan(v)]
    values["iou_mean"] = float(np.mean(finite)) if finite else math.nan
    return values


def stage_metrics(matrix: np.ndarray, names: Sequence[str], stage: str) -> dict[str, float]:
    """:func:`metrics_from_confusion` as logged: ``{stage}/iou_<name>`` …, ``{stage}/iou_mean``.

    NaN (a class absent from both maps) is logged as 0.
    """
    flat = {}
    for key, value in metrics_from_confusion(matrix, names).items():
        flat[f"{stage}/{key.replace('/', '_')}"] = 0.0 if math.isnan(value) else float(value)
    return flat
