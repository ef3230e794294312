"""Segmentation metrics with one definition for training, testing and full-scene evaluation.

IoU, precision, recall and F1 per class come from a confusion matrix (rows = reference,
columns = prediction) over valid pixels; ``iou_mean`` averages IoU over every output class,
background included — the same number Lightning logs as ``val/iou_mean``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from glacier.data.schema import BACKGROUND, IGNORE_INDEX

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


def pixel_area_km2(transform: Any, crs: Any) -> float:
    """Area of one pixel in km² (projected CRS in metres; geographic: at the equator scale).

    Args:
        transform: Affine geotransform.
        crs: Raster CRS.

    Returns:
        The area of one pixel.
    """
    area = abs(transform.a * transform.e - transform.b * transform.d)
    if crs is not None and crs.is_geographic:
        area *= 111.32**2 * 1e6  # degrees² → m² (approximation; vectorize gives exact areas)
    elif crs is not None and crs.linear_units_factor[1] != 1.0:
        area *= crs.linear_units_factor[1] ** 2
    return float(area / 1e6)


def _read_classes(class_tif: Path) -> tuple[np.ndarray, float]:
    with rasterio.open(class_tif) as src:
        classes = np.empty((src.height, src.width), dtype=np.uint8)
        for _, window in src.block_windows(1):
            w: Window = window
            rows = slice(w.row_off, w.row_off + w.height)
            cols = slice(w.col_off, w.col_off + w.width)
            classes[rows, cols] = src.read(1, window=w)
        return classes, pixel_area_km2(src.transform, src.crs)


def evaluate_scene(
    class_tif: Path, truth: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Compare a predicted class map GeoTIFF with a reference class map on the same grid.

    Args:
        class_tif: ``<scene>_classes.tif`` (0 background, i class i, 255 nodata).
        truth: (H, W) reference map with the same coding.
        class_names: Classes in output order (background excluded).

    Returns:
        JSON-ready ``{"metrics", "areas_km2": {"predicted", "reference"}, "pixels",
        "confusion", "classes"}`` (NaN written as None).
    """
    prediction, pixel_km2 = _read_classes(class_tif)
    names = [BACKGROUND, *class_names]
    matrix = confusion_matrix(prediction, truth, len(names))
    metrics = metrics_from_confusion(matrix, names)
    areas = {
        "predicted": {n: float(matrix[:, k].sum() * pixel_km2) for k, n in enumerate(names)},
        "reference": {n: float(matrix[k, :].sum() * pixel_km2) for k, n in enumerate(names)},
    }
    return {
        "classes": names,
        "metrics": {k: None if math.isnan(v) else float(v) for k, v in metrics.items()},
        "areas_km2": areas,
        "pixels": int(matrix.sum()),
        "confusion": matrix.tolist(),
    }


def _fmt(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.3f}"


def format_metrics_table(result: dict[str, Any]) -> str:
    """An aligned text table of :func:`evaluate_scene` output.

    Args:
        result: The evaluation result.

    Returns:
        One row per class (IoU, precision, recall, F1, areas) and the mean IoU.
    """
    metrics, areas = result["metrics"], result["areas_km2"]
    columns = ("IoU", "prec", "recall", "F1")
    header = f"{'class':<12} " + " ".join(f"{c:>6}" for c in columns)
    header += f" {'pred km2':>9} {'ref km2':>9}"
    rows = [header, "-" * len(header)]
    for name in result["classes"]:
        cells = " ".join(_fmt(metrics[f"{m}/{name}"]) for m in METRICS)
        rows.append(
            f"{name:<12} {cells} {areas['predicted'][name]:9.3f} {areas['reference'][name]:9.3f}"
        )
    rows.append(f"{'mean IoU':<12} {_fmt(metrics['iou_mean'])}")
    return "\n".join(rows)
