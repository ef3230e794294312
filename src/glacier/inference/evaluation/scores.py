"""A finished class map scored against a reference map: metrics, areas, a printable table.

The metrics themselves (one definition for training, testing and full-scene evaluation) are
:mod:`glacier.models.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from glacier.data.contract import BACKGROUND
from glacier.models import METRICS, confusion_matrix, metrics_from_confusion


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
