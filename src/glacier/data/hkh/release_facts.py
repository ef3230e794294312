"""The published HKH glacier mapping release (LILA) as it is on disk: files, bands, tiles.

``hkh_patches.tar.gz`` unpacks to ``glacier_data/``::

    raster_data/LE07_PPPRRR_YYYYMMDD.tif   35 tiles, 15 float32 bands (below), native UTM, 30 m,
                                           0 in every band outside the Landsat scene
    vector_data/hkh.shp, clean.shp, debris.shp   ICIMOD Glacier_2005 (``Glaciers`` column)
    slices/slice_{t}_img_{k:03}.npy        512×512×15 float32 H×W×C; NaN outside the HKH border
    slices/slice_{t}_mask_{k:03}.npy       512×512×3 uint8 0/1: all glaciers, clean ice, debris
    slices/slices.geojson                  footprints and statistics (with defects, below)
    splits/{train,dev,test}/               already imputed and z-scored copies: not raw data

``t`` is the tile's row in the predecessor's ``conf/masking_paths.yaml`` (:data:`RELEASE_TILES`),
``k`` the row-major index of the 512-px window at a 506-px step from the tile's top-left corner
(``view_as_windows``; partial windows dropped). ``slices.geojson`` declares EPSG:32643 for every
tile whatever its UTM zone, names files by absolute paths of the exporting machine, and its
boxes are 506 px wide and mirrored north–south within their tile (the predecessor's
``slice_polys``). Sources: krisrs1128/glacier_mapping (``glacier_mapping/data/slice.py``,
``conf/masking_paths.yaml``), stactools-packages/lila-hkh-glacier (branch feature/slices,
``tests/data-files/`` holds real files of the release); details in ``docs/hkh_release.md``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from glacier.data.contract import Channel, NodataRule

RELEASE_NODATA = NodataRule(value=None, all_zero=True)
"""The release's nodata: NaN outside the HKH border, 0 in every channel outside the scene."""
RELEASE_SLICES_DIR = "slices"
RELEASE_METADATA = f"{RELEASE_SLICES_DIR}/slices.geojson"
"""The release's slice folder and its footprints file (relative to ``glacier_data/``)."""

RELEASE_BANDS = (
    *("B1", "B2", "B3", "B4", "B5", "B6_VCID_1", "B6_VCID_2", "B7", "B8", "BQA"),
    *("ndvi", "ndsi", "ndwi", "elevation", "slope"),
)
# checked against the release's bands: NIR/SWIR ndwi and SWIR-minus-green ndsi, not the
# textbook green/NIR NDWI and green/SWIR NDSI
RELEASE_FORMULAS = {
    "ndvi": "(B4-B3)/(B4+B3)",
    "ndsi": "(B5-B2)/(B5+B2)",
    "ndwi": "(B4-B5)/(B4+B5)",
    "elevation": "elevation [m]",
    "slope": "slope [deg]",
}
RELEASE_ROLES = {"blue": "B1", "green": "B2", "red": "B3", "nir": "B4", "swir1": "B5"}
RELEASE_CLASSES = ("glacier", "clean_ice", "debris")  # the mask channels, in order
RELEASE_SOURCE_DTYPE = "float32"  # of the patches and of the raster_data/ tiles
RELEASE_CHANNEL_SETS = {
    "all": RELEASE_BANDS,
    # the predecessor's default input: bands without thermal/pan/QA, indices, DEM
    "predecessor": (
        "B1",
        "B2",
        "B3",
        "B4",
        "B5",
        "B7",
        "ndvi",
        "ndsi",
        "ndwi",
        "elevation",
        "slope",
    ),
    "landsat": ("B1", "B2", "B3", "B4", "B5", "B7"),
    "rgb": ("B3", "B2", "B1"),
}
# digital numbers 0-255 (thermal too), the QA bit field, indices at float16: the release's raw
# tiles in 23 instead of 60 bytes per pixel (checked exact while storing)
RELEASE_STORAGE_DTYPES = {
    **dict.fromkeys(("B1", "B2", "B3", "B4", "B5", "B6_VCID_1", "B6_VCID_2", "B7", "B8"), "uint8"),
    "BQA": "uint16",
    **dict.fromkeys(("ndvi", "ndsi", "ndwi", "slope"), "float16"),
}
PATCH_STEP_OVERLAP = 6  # windows of 512 px at a 506-px step
# slice_{t}_… → tile: the rows of the predecessor's conf/masking_paths.yaml
RELEASE_TILES = (
    *("LE07_149037_20041024", "LE07_149034_20060726", "LE07_146038_20060923"),
    *("LE07_147038_20040908", "LE07_143039_20081212", "LE07_146037_20071231"),
    *("LE07_149036_20071102", "LE07_150036_20050916", "LE07_151035_20060708"),
    *("LE07_148037_20071127", "LE07_151034_20050822", "LE07_139041_20051208"),
    *("LE07_148035_20061108", "LE07_137041_20060127", "LE07_148036_20050902"),
    *("LE07_145039_20011020", "LE07_149035_20070915", "LE07_136041_20060731"),
    *("LE07_136040_20060731", "LE07_135040_20081102", "LE07_146039_20051123"),
    *("LE07_146036_20090814", "LE07_140041_20071221", "LE07_150035_20050916"),
    *("LE07_147037_20060930", "LE07_150034_20050916", "LE07_147036_20060930"),
    *("LE07_152035_20060917", "LE07_152034_20060731", "LE07_147035_20050826"),
    *("LE07_134040_20070922", "LE07_153036_20060924", "LE07_144039_20011013"),
    *("LE07_152033_20060731", "LE07_138041_20071223"),
)
SLICE_NAME = re.compile(r"^slice_(\d+)_(img|mask)_(\d+)\.npy$")
TILE_NAME = re.compile(r"^LE07_(\d{3})(\d{3})_(\d{8})$")


@dataclass(frozen=True)
class ReleaseSlice:
    """One image/mask pair of ``slices/``.

    Attributes:
        tile: The tile's number ``t`` (its row in ``masking_paths.yaml``).
        k: The window index.
        image: The ``_img_`` file.
        mask: The ``_mask_`` file.
    """

    tile: int
    k: int
    image: Path
    mask: Path


def release_channels() -> tuple[Channel, ...]:
    """The 15 channels of the release: raw bands, then the derived ones read from the files.

    Every channel comes from float32 files (the patches, and the tiles they were cut from).
    """
    return tuple(
        Channel(
            name,
            "file" if name in RELEASE_FORMULAS else "band",
            RELEASE_FORMULAS.get(name),
            source_dtypes=(RELEASE_SOURCE_DTYPE,),
        )
        for name in RELEASE_BANDS
    )


def compact_release_channels(channels: Sequence[Channel]) -> tuple[Channel, ...]:
    """The release's channels as a training cache keeps them, converted once from float32.

    Digital numbers and QA bits take the integer dtypes of :data:`RELEASE_STORAGE_DTYPES`
    (the cache checks every valid value converts exactly); the indices, elevation and slope stay
    float32: their values are float32 numbers, which float16 would round.
    """
    compact = []
    for channel in channels:
        dtype = RELEASE_STORAGE_DTYPES.get(channel.name, channel.dtype)
        compact.append(replace(channel, dtype=dtype) if np.dtype(dtype).kind in "iu" else channel)
    return tuple(compact)
