"""What is made from a scene's finished maps.

Polygons, metrics, uncertainty figures, per-glacier areas against an inventory
(:mod:`~glacier.inference.products.map_products`), and a STAC item with the scene's record.
"""

from __future__ import annotations

from glacier.data.raster import SceneReader
from glacier.inference.engine import PredictionOutputs
from glacier.inference.products.map_products import MapProducts, products_from_maps
from glacier.inference.products.product_settings import ProductSettings
from glacier.inference.products.records import PredictionRecord
from glacier.inference.products.stac import write_stac_item


def make_products(
    scene_id: str,
    reader: SceneReader,
    outputs: PredictionOutputs,
    settings: ProductSettings,
    made: MapProducts | None = None,
) -> PredictionRecord:
    """Polygons with areas, metrics against the reference, an overlay PNG and a STAC item.

    With a reference and ``_uncertainty_measures.tif``, the metrics also say how well each
    uncertainty measure ranks the map's errors, drawn as ``<scene>_uncertainty.png``.

    Args:
        scene_id: The scene's name (the outputs' prefix).
        reader: The open scene.
        outputs: Its final class, probability and uncertainty maps.
        settings: What to make.
        made: What :func:`products_from_maps` already made of the maps (None: make it now).

    Returns:
        The scene's record: paths of every output, metrics when there is a reference (the
        run's fingerprint, checkpoint and classes are the caller's to add).
    """
    made = made or products_from_maps(scene_id, reader, outputs, settings)
    scored = made.scores
    item = write_stac_item(
        scene_id,
        outputs,
        made.gpkg,
        made.overlay,
        scored.metrics_json,
        settings.class_names,
        settings.stac_properties,
        uncertainty_figure=scored.uncertainty_figure,
        extra=made.assets,
    )
    return PredictionRecord(
        scene=scene_id,
        classes=outputs.classes,
        probs=outputs.probs,
        uncertainty=outputs.uncertainty,
        measures=outputs.measures,
        passes=outputs.passes,
        polygons=made.gpkg,
        overlay=made.overlay,
        uncertainty_figure=scored.uncertainty_figure,
        metrics_json=scored.metrics_json,
        stac=item,
        per_glacier=made.per_glacier.get("per_glacier"),
        per_glacier_csv=made.per_glacier.get("per_glacier_csv"),
        per_glacier_sums=made.per_glacier.get("per_glacier_sums"),
        uncertainty_bands=made.written,
        metrics=scored.metrics,
        no_reference=scored.no_reference,
    )
