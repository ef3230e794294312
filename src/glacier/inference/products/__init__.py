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

__all__ = [
    "ProductSettings",
    "finished",
    "make_products",
    "prediction_fingerprint",
    "read_records",
    "write_record",
]
