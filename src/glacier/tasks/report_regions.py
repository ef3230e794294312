"""The held-out regions of a scene map: its reference restricted to one split's windows.

A full-scene map is scored by ``glacier predict`` on the whole scene; ``glacier report`` also
scores it on the pixels of the test (or dev) windows of the processed dataset, where those
are held out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glacier.data.contract import IGNORE_INDEX, DatasetLayout
from glacier.data.store import training_area
from glacier.inference.evaluation import evaluate_scene, evaluate_uncertainty
from glacier.inference.products import PredictionRecord


def reference_map(mask: np.ndarray) -> np.ndarray:
    """(H, W) class map of stored (H, W, K) labels: later classes win, 255 stays nodata."""
    out = np.zeros(mask.shape[:2], dtype=np.uint8)
    for k in range(mask.shape[2]):
        out[mask[..., k] == 1] = k + 1
    out[mask[..., 0] == IGNORE_INDEX] = IGNORE_INDEX
    return out


def region_truth(
    prediction: PredictionRecord, processed_dir: Path, split: str = "test"
) -> np.ndarray | None:
    """The reference map of a scene on the pixels of one split's windows only (else nodata).

    Args:
        prediction: A scene's prediction record (``<scene>_prediction.json``).
        processed_dir: The processed dataset the model was trained on.
        split: ``test`` or ``dev``.

    Returns:
        (H, W) reference classes, or None when the dataset or the scene is not there.
    """
    layout = DatasetLayout(processed_dir)
    index_path = layout.index
    mask_path = layout.mask(prediction.scene)
    if not index_path.is_file() or not mask_path.is_file():
        return None
    index = pd.read_csv(index_path)
    windows = index[(index["split"] == split) & (index["scene"].astype(str) == prediction.scene)]
    if not len(windows):
        return None
    truth = reference_map(np.load(mask_path, mmap_mode="r"))
    truth[~training_area(truth.shape, windows)] = IGNORE_INDEX
    return truth


def region_evaluation(
    prediction: PredictionRecord, processed_dir: Path, split: str = "test"
) -> dict[str, Any] | None:
    """Score a full-scene map on the pixels of one split's windows only.

    Returns:
        :func:`evaluate_scene`'s result (with ``uncertainty`` when the record lists the
        measures file), or None when the dataset or the scene is not there.
    """
    truth = region_truth(prediction, processed_dir, split)
    if truth is None or prediction.metrics is None:
        return None
    classes = prediction.metrics["classes"][1:]
    result = evaluate_scene(prediction.classes, truth, classes)
    if prediction.measures is not None:
        quality = evaluate_uncertainty(prediction.measures, prediction.classes, truth)
        result["uncertainty"] = quality.to_dict()
    return result


def scene_evaluations(
    predictions: list[PredictionRecord], processed: Any, quality: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The scores of a single scored scene map: held-out test region and full scene.

    Args:
        predictions: The prediction folder's records.
        processed: The processed dataset the model(s) trained on (None: no region scores).
        quality: Filled with the uncertainty evaluation of each region scored.

    Returns:
        ``test_region_map`` and ``full_scene`` evaluations (those available) and the measures
        written as ``_uncertainty.tif``. Nothing when no or several scenes were scored.
    """
    scored = [p for p in predictions if p.metrics]
    if len(scored) != 1:
        return {}, []
    scene, metrics = scored[0], scored[0].metrics or {}
    evaluations: dict[str, Any] = {}
    if processed is not None:
        for split, key in (("dev", "dev_region_map"), ("test", "test_region_map")):
            region = region_evaluation(scene, Path(str(processed)), split)
            if region is not None and region.get("uncertainty"):
                quality[key] = region.pop("uncertainty")
            if region is not None and split == "test":
                evaluations["test_region_map"] = region
    evaluations["full_scene"] = metrics
    if metrics.get("uncertainty"):
        quality["full_scene"] = metrics["uncertainty"]
    return evaluations, list(scene.uncertainty_bands)
