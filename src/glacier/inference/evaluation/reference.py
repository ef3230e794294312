"""Reference labels for full-scene evaluation, burned onto a scene grid for chosen classes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rasterio.crs import CRS
from shapely import Polygon

from glacier.data.contract import IGNORE_INDEX
from glacier.data.labels import ClassOutlines, burn_class, nodata_mask
from glacier.data.raster import SceneReader
from glacier.errors import GlacierInputError


def check_reference_classes(outlines: ClassOutlines, class_names: Sequence[str]) -> None:
    """Refuse reference outlines that lack one of the checkpoint's classes.

    Raises:
        GlacierInputError: Naming the missing classes.
    """
    missing = [c for c in class_names if not outlines.frames.get(c)]
    if missing:
        raise GlacierInputError(
            f"the reference labels have no polygons of class(es) {missing}; the checkpoint "
            f"predicts {list(class_names)} and the labels provide {sorted(outlines.frames)}"
        )


def reference_class_map(
    outlines: ClassOutlines, class_names: Sequence[str], reader: SceneReader
) -> np.ndarray:
    """Burn reference outlines into a class map (0 background, i class i, 255 nodata).

    Args:
        outlines: Loaded reference polygons (by class name).
        class_names: The checkpoint's classes, in output order.
        reader: The scene grid.

    Returns:
        (H, W) uint8 reference map.

    Raises:
        GlacierInputError: If the references lack one of the checkpoint's classes.
    """
    check_reference_classes(outlines, class_names)
    reference = np.zeros((reader.height, reader.width), dtype=np.uint8)
    for index, name in enumerate(class_names, start=1):
        burned, _ = burn_class(outlines.in_crs(name, reader.crs), reader)
        reference[burned == 1] = index
    reference[nodata_mask(reader)] = IGNORE_INDEX
    return reference


def reference_polygons(
    outlines: ClassOutlines, class_names: Sequence[str], crs: CRS | None, footprint: Polygon
) -> int:
    """How many reference polygons of the checkpoint's classes overlap a scene's footprint.

    Args:
        outlines: Loaded reference polygons (by class name).
        class_names: The checkpoint's classes.
        crs: The scene's CRS.
        footprint: The scene's grid box in that CRS.

    Returns:
        The count (0: every score of the scene would be against an empty reference).
    """
    check_reference_classes(outlines, class_names)
    return sum(int(outlines.in_crs(name, crs).intersects(footprint).sum()) for name in class_names)
