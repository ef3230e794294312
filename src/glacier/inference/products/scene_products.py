"""What is made from a scene's finished maps: polygons, metrics, an overlay, a STAC item."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glacier.data.labels import ClassOutlines
from glacier.data.raster import SceneReader
from glacier.inference.engine import PredictionOutputs
from glacier.inference.evaluation import evaluate_scene, reference_class_map
from glacier.inference.products.preview import scene_preview
from glacier.inference.products.stac import write_stac_item
from glacier.inference.products.vectorize import vectorize_class_map, write_polygons
from glacier.utils.io import write_json_atomic
from glacier.viz import overlay_png


@dataclass(frozen=True)
class ProductSettings:
    """How to turn maps into products.

    Attributes:
        class_names: Predicted classes.
        min_area_km2: Polygons smaller than this are dropped.
        simplify_m: Polygon simplification tolerance in metres (0 = exact pixel edges).
        reference: Reference outlines for metrics, or None.
        stac_properties: Extra STAC properties (checkpoint, MC passes...).
        no_reference: Scenes the reference does not cover, with why: they get no metrics
            (``no_reference`` in their record) instead of scores against nothing.
    """

    class_names: list[str]
    min_area_km2: float
    simplify_m: float
    reference: ClassOutlines | None
    stac_properties: dict[str, Any]
    no_reference: Mapping[str, str] = field(default_factory=dict)


def sibling(prefix: Path, suffix: str) -> Path:
    """``prefix`` with ``suffix`` appended to its name."""
    return prefix.with_name(prefix.name + suffix)


def make_products(
    scene_id: str, reader: SceneReader, outputs: PredictionOutputs, settings: ProductSettings
) -> dict[str, Any]:
    """Polygons with areas, metrics against the reference, an overlay PNG and a STAC item.

    Args:
        scene_id: The scene's name (the outputs' prefix).
        reader: The open scene.
        outputs: Its final class, probability and uncertainty maps.
        settings: What to make.

    Returns:
        The scene's result: paths of every output, metrics when there is a reference.
    """
    prefix = outputs.classes.with_name(scene_id)
    polygons = vectorize_class_map(
        outputs.classes,
        settings.class_names,
        min_area_km2=settings.min_area_km2,
        simplify_tolerance_m=settings.simplify_m,
    )
    gpkg = sibling(prefix, "_glaciers.gpkg")
    write_polygons(polygons, gpkg)
    result: dict[str, Any] = {
        "scene": scene_id,
        **{k: str(v) for k, v in vars(outputs).items() if v},
        "polygons": str(gpkg),
    }
    truth = None
    unreferenced = settings.no_reference.get(scene_id)
    if unreferenced is not None:
        result["no_reference"] = unreferenced
    elif settings.reference is not None:
        truth = reference_class_map(settings.reference, settings.class_names, reader)
        metrics = evaluate_scene(outputs.classes, truth, settings.class_names)
        metrics_path = sibling(prefix, "_metrics.json")
        write_json_atomic(metrics_path, metrics)
        result["metrics"] = metrics
        result["metrics_json"] = str(metrics_path)
    rgb, transform = scene_preview(reader)
    png = sibling(prefix, "_overlay.png")
    overlay_png(
        rgb,
        polygons,
        png,
        transform=transform,
        reference=truth,
        reference_transform=reader.transform,
    )
    result["overlay"] = str(png)
    item = write_stac_item(
        scene_id,
        outputs,
        gpkg,
        png,
        result.get("metrics_json"),
        settings.class_names,
        settings.stac_properties,
    )
    result["stac"] = str(item)
    return result
