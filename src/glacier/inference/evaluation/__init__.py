"""Scoring maps against reference outlines: reference maps, scene metrics, uncertainty quality."""

from glacier.inference.evaluation.reference import reference_class_map, reference_polygons
from glacier.inference.evaluation.scores import evaluate_scene, format_metrics_table, pixel_area_km2
from glacier.inference.evaluation.uncertainty import (
    band_measures,
    evaluate_uncertainty,
    format_uncertainty_table,
    uncertainty_figure,
)

__all__ = [
    "band_measures",
    "evaluate_scene",
    "evaluate_uncertainty",
    "format_metrics_table",
    "format_uncertainty_table",
    "pixel_area_km2",
    "reference_class_map",
    "reference_polygons",
    "uncertainty_figure",
]
