"""What is made from finished maps.

Polygons with areas, overlays, STAC items, and the per-scene prediction records that let reruns skip
finished scenes.
"""

from glacier.inference.products.records import (
    finished,
    prediction_fingerprint,
    read_records,
    write_record,
)
from glacier.inference.products.scene_products import ProductSettings, make_products
from glacier.inference.products.stac import (
    GEOPACKAGE_MEDIA_TYPE,
    StacAsset,
    footprint_wgs84,
    scene_datetime,
)

__all__ = [
    "GEOPACKAGE_MEDIA_TYPE",
    "ProductSettings",
    "StacAsset",
    "finished",
    "footprint_wgs84",
    "make_products",
    "prediction_fingerprint",
    "read_records",
    "scene_datetime",
    "write_record",
]
