"""What is made from finished maps.

Polygons with areas, overlays, STAC items, the per-scene prediction records that let reruns skip
finished scenes, and the publication of a scene's outputs together.
"""

from glacier.inference.products.map_products import MapProducts, products_from_maps
from glacier.inference.products.product_settings import ProductSettings
from glacier.inference.products.publishing import (
    discard_outputs,
    publish_scene_outputs,
    recover_outputs,
    scene_staging,
)
from glacier.inference.products.records import (
    OUTPUT_KEYS,
    PredictionRecord,
    finished,
    prediction_fingerprint,
    read_record,
    read_records,
    write_record,
)
from glacier.inference.products.scene_products import make_products
from glacier.inference.products.stac import footprint_wgs84, scene_datetime
from glacier.inference.products.stac_assets import GEOPACKAGE_MEDIA_TYPE, StacAsset

__all__ = [
    "GEOPACKAGE_MEDIA_TYPE",
    "OUTPUT_KEYS",
    "MapProducts",
    "PredictionRecord",
    "ProductSettings",
    "StacAsset",
    "discard_outputs",
    "finished",
    "footprint_wgs84",
    "make_products",
    "prediction_fingerprint",
    "products_from_maps",
    "publish_scene_outputs",
    "read_record",
    "read_records",
    "recover_outputs",
    "scene_datetime",
    "scene_staging",
    "write_record",
]
