"""Labels: outline files (layers, dates, classes, repaired geometry) and their masks on a grid."""

from glacier.data.labels.dates import parse_years, refuse_unparseable
from glacier.data.labels.inventory import (
    Inventory,
    InventorySettings,
    format_date,
    load_inventory,
    outline_areas_km2,
)
from glacier.data.labels.layers import choose_layer, layer_listing
from glacier.data.labels.masks import burn_class, burn_labels, nodata_mask, outside_region
from glacier.data.labels.outlines import (
    ClassOutlines,
    class_frames,
    load_label_sources,
    load_outlines,
)

__all__ = [
    "ClassOutlines",
    "Inventory",
    "InventorySettings",
    "burn_class",
    "burn_labels",
    "choose_layer",
    "class_frames",
    "format_date",
    "layer_listing",
    "load_inventory",
    "load_label_sources",
    "load_outlines",
    "nodata_mask",
    "outline_areas_km2",
    "outside_region",
    "parse_years",
    "refuse_unparseable",
]
