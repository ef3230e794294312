"""How a scene's maps are turned into products (:class:`ProductSettings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from glacier.data.labels import ClassOutlines, Inventory
from glacier.inference.glaciers import SceneFootprint


@dataclass(frozen=True)
class ProductSettings:
    """How to turn maps into products.

    Attributes:
        class_names: Predicted classes.
        min_area_km2: Polygons smaller than this are dropped.
        simplify_m: Polygon simplification tolerance in metres (0 = exact pixel edges).
        reference: Reference outlines for metrics, or None.
        stac_properties: Extra STAC properties (checkpoint, MC passes...).
        inventory: Inventory outlines for per-glacier areas, or None.
        footprints: Every scene of the run, in order (a scene excludes the earlier ones'
            footprints, so overlaps are counted once).
        no_reference: Scenes the reference does not cover, with why: they get no metrics
            (``no_reference`` in their record) instead of scores against nothing.
    """

    class_names: list[str]
    min_area_km2: float
    simplify_m: float
    reference: ClassOutlines | None
    stac_properties: dict[str, Any]
    inventory: Inventory | None = None
    footprints: tuple[SceneFootprint, ...] = ()
    no_reference: Mapping[str, str] = field(default_factory=dict)
