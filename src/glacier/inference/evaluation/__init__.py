"""Scoring maps against reference outlines: reference maps on the scene grid and scene metrics."""

from glacier.inference.evaluation.reference import reference_class_map, reference_polygons
from glacier.inference.evaluation.scores import evaluate_scene, format_metrics_table, pixel_area_km2

__all__ = [
    "evaluate_scene",
    "format_metrics_table",
    "pixel_area_km2",
    "reference_class_map",
    "reference_polygons",
]
