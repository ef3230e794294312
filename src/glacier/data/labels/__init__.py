"""Labels: outline files (layers, dates, classes, repaired geometry) and their masks on a grid."""

from glacier.data.labels.dates import parse_years, refuse_unparseable
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
    "burn_class",
    "burn_labels",
    "choose_layer",
    "class_frames",
    "layer_listing",
    "load_label_sources",
    "load_outlines",
    "nodata_mask",
    "outside_region",
    "parse_years",
    "refuse_unparseable",
]
