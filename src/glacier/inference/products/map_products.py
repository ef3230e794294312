"""What is made from a scene's maps' pixels: polygons, scores, the overlay, per-glacier tables.

:func:`products_from_maps` may read the predictor's streamed files while their COGs are built
(pixel for pixel the final maps); every file it makes is named after the final maps. The STAC
item and the record follow in :func:`glacier.inference.products.make_products`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio

from glacier.data.raster import SceneReader
from glacier.inference.engine import COG_MEDIA_TYPE, PredictionOutputs
from glacier.inference.evaluation import (
    band_measures,
    evaluate_scene,
    evaluate_uncertainty,
    reference_class_map,
    uncertainty_figure,
)
from glacier.inference.glaciers import (
    FilePasses,
    earlier_footprints,
    scene_glacier_sums,
    write_scene_tables,
)
from glacier.inference.output_names import (
    METRICS,
    OVERLAY,
    POLYGONS,
    UNCERTAINTY_FIGURE,
    output_path,
)
from glacier.inference.products.preview import scene_preview
from glacier.inference.products.product_settings import ProductSettings
from glacier.inference.products.stac_assets import GEOPACKAGE_MEDIA_TYPE, StacAsset
from glacier.inference.products.vectorize import vectorize_class_map, write_polygons
from glacier.utils.io import write_json_atomic
from glacier.viz import overlay_png


def glacier_products(
    scene_id: str,
    outputs: PredictionOutputs,
    settings: ProductSettings,
    prefix: Path,
    passes_asset: Path | None = None,
) -> tuple[dict[str, Path], list[StacAsset]]:
    """Per-glacier tables of one scene (when an inventory is given) and their STAC assets.

    ``passes_asset``: the published passes file the STAC asset names (default
    ``outputs.passes``, which may be the streamed file being read).

    Returns:
        The record's ``per_glacier``, ``per_glacier_csv`` and ``per_glacier_sums`` (none
        without an inventory) and the STAC assets of the tables (and of the passes).
    """
    if settings.inventory is None:
        return {}, []
    with rasterio.open(outputs.classes) as src:
        crs = src.crs
    exclude = earlier_footprints(settings.footprints, scene_id, crs)
    passes = None if outputs.passes is None else FilePasses(outputs.passes)
    sums, cut = scene_glacier_sums(
        settings.inventory, outputs.classes, settings.class_names, exclude, passes
    )
    tables = write_scene_tables(settings.inventory, sums, cut, settings.class_names, prefix)
    written = {key: Path(path) for key, path in tables.items()}
    assets = [
        *(
            [
                StacAsset(
                    "passes",
                    passes_asset or outputs.passes,
                    "Class map of every MC pass (one band each; per-glacier intervals)",
                    COG_MEDIA_TYPE,
                )
            ]
            if outputs.passes
            else []
        ),
        StacAsset(
            "per_glacier",
            written["per_glacier"],
            "Per-glacier areas: inventory vs mapped, with intervals",
            GEOPACKAGE_MEDIA_TYPE,
        ),
        StacAsset(
            "per_glacier_csv",
            written["per_glacier_csv"],
            "Per-glacier areas (CSV)",
            "text/csv",
        ),
    ]
    return written, assets


@dataclass(frozen=True)
class SceneScores:
    """A scene's scores against the reference (the record's fields of the same names).

    Attributes:
        metrics: :func:`evaluate_scene`'s result (with ``uncertainty``), or None.
        metrics_json: Where it is written, or None.
        uncertainty_figure: The measures' figure, or None.
        no_reference: Why the scene has none (the reference does not cover it), or None.
    """

    metrics: dict[str, Any] | None = None
    metrics_json: Path | None = None
    uncertainty_figure: Path | None = None
    no_reference: str | None = None


def score_scene(
    scene_id: str,
    reader: SceneReader,
    outputs: PredictionOutputs,
    settings: ProductSettings,
    written: list[str],
) -> tuple[np.ndarray | None, SceneScores]:
    """The scene's metrics against the reference (and its uncertainty figure), if it has one.

    Returns:
        The reference class map (None without one) and the scores.
    """
    unreferenced = settings.no_reference.get(scene_id)
    if unreferenced is not None:
        return None, SceneScores(no_reference=unreferenced)
    if settings.reference is None:
        return None, SceneScores()
    prefix = outputs.classes.with_name(scene_id)
    figure = None
    truth = reference_class_map(settings.reference, settings.class_names, reader)
    metrics = evaluate_scene(outputs.classes, truth, settings.class_names)
    if outputs.measures is not None:
        quality = evaluate_uncertainty(outputs.measures, outputs.classes, truth)
        metrics["uncertainty"] = quality.to_dict()
        figure = output_path(prefix, UNCERTAINTY_FIGURE)
        uncertainty_figure(quality, figure, f"{scene_id}, full scene", written)
    metrics_path = output_path(prefix, METRICS)
    write_json_atomic(metrics_path, metrics)
    return truth, SceneScores(metrics, metrics_path, figure)


def draw_overlay(
    reader: SceneReader,
    outputs: PredictionOutputs,
    polygons: gpd.GeoDataFrame,
    truth: np.ndarray | None,
    png: Path,
) -> Path:
    """The scene's preview (the predictor's samples, if kept) with polygons and reference."""
    rgb, transform = scene_preview(reader, outputs.preview)
    overlay_png(
        rgb,
        polygons,
        png,
        transform=transform,
        reference=truth,
        reference_transform=reader.transform,
    )
    return png


def scene_polygons(
    outputs: PredictionOutputs, settings: ProductSettings, gpkg: Path
) -> tuple[gpd.GeoDataFrame, Path]:
    """The class map's polygons with their areas, written to ``gpkg``."""
    polygons = vectorize_class_map(
        outputs.classes,
        settings.class_names,
        min_area_km2=settings.min_area_km2,
        simplify_tolerance_m=settings.simplify_m,
    )
    write_polygons(polygons, gpkg)
    return polygons, gpkg


@dataclass(frozen=True)
class MapProducts:
    """What a scene's maps give before they are published (all but the STAC item).

    Attributes:
        gpkg: The polygons' GeoPackage.
        overlay: The overlay PNG.
        written: Measures of ``_uncertainty.tif``.
        scores: Scores against the reference.
        per_glacier: The per-glacier tables (none without an inventory).
        assets: Their STAC assets.
    """

    gpkg: Path
    overlay: Path
    written: tuple[str, ...]
    scores: SceneScores
    per_glacier: dict[str, Path]
    assets: list[StacAsset]


def products_from_maps(
    scene_id: str,
    reader: SceneReader,
    outputs: PredictionOutputs,
    settings: ProductSettings,
    maps: PredictionOutputs | None = None,
) -> MapProducts:
    """Polygons with areas, metrics against the reference, the overlay, per-glacier tables.

    Args:
        scene_id: The scene's name (the outputs' prefix).
        reader: The open scene.
        outputs: Its final maps (every file made is named after them).
        settings: What to make.
        maps: Where to read the maps' pixels (default ``outputs``): the predictor's streamed
            files, pixel for pixel the final maps, while their COGs are being built.
    """
    maps = maps or outputs
    prefix = outputs.classes.with_name(scene_id)
    polygons, gpkg = scene_polygons(maps, settings, output_path(prefix, POLYGONS))
    written = band_measures(maps.uncertainty) if maps.uncertainty else []
    truth, scored = score_scene(scene_id, reader, maps, settings, written)
    png = draw_overlay(reader, maps, polygons, truth, output_path(prefix, OVERLAY))
    per_glacier, assets = glacier_products(scene_id, maps, settings, prefix, outputs.passes)
    return MapProducts(gpkg, png, tuple(written), scored, per_glacier, assets)
