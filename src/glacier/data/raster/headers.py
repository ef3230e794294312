"""Raster headers (size, CRS, transform, dtypes) and the checks every raster input must pass.

Reading a header touches no pixel, so every scene, band file and DEM can be checked before a run
writes anything (:mod:`glacier.data.checks.inputs`);
:class:`glacier.data.raster.scene_reader.SceneReader` applies the same checks when it opens a scene.
A scene's headers (its band files and grid) are :mod:`glacier.data.raster.scene_header`'s.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT

from glacier.errors import GlacierEnvironmentError, GlacierFileError, one_line, require_file

SUPPORTED_DTYPES = frozenset(
    ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
)


@dataclass(frozen=True)
class RasterHeader:
    """What a raster file says about itself, without reading pixels.

    Attributes:
        path: The file.
        width: Columns.
        height: Rows.
        count: Bands.
        crs: CRS as WKT, or None when the file has none.
        transform: Geotransform coefficients ``(a, b, c, d, e, f)``.
        dtypes: Data type per band.
        nodata: Declared nodata value, or None.
    """

    path: Path
    width: int
    height: int
    count: int
    crs: str | None
    transform: tuple[float, float, float, float, float, float]
    dtypes: tuple[str, ...]
    nodata: float | None

    @property
    def affine(self) -> Affine:
        """The geotransform as an :class:`affine.Affine`."""
        return Affine(*self.transform)

    @property
    def crs_object(self) -> CRS | None:
        """The CRS as a rasterio :class:`~rasterio.crs.CRS`."""
        return CRS.from_wkt(self.crs) if self.crs else None

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable form (for fingerprints and reports)."""
        return {
            "path": str(self.path),
            "width": self.width,
            "height": self.height,
            "count": self.count,
            "crs": self.crs,
            "transform": list(self.transform),
            "dtypes": list(self.dtypes),
            "nodata": None if self.nodata is None else float(self.nodata),
        }


def header_of(dataset: DatasetReader, path: Path) -> RasterHeader:
    """The header of an open dataset.

    Args:
        dataset: Open rasterio dataset.
        path: Its file, for messages.

    Returns:
        The header.
    """
    t = dataset.transform
    return RasterHeader(
        path=Path(path),
        width=int(dataset.width),
        height=int(dataset.height),
        count=int(dataset.count),
        crs=dataset.crs.to_wkt() if dataset.crs else None,
        transform=(t.a, t.b, t.c, t.d, t.e, t.f),
        dtypes=tuple(str(d) for d in dataset.dtypes),
        nodata=None if dataset.nodata is None else float(dataset.nodata),
    )


def open_raster(path: Path, what: str) -> DatasetReader:
    """Open a raster, naming the file and its role when it is missing or unreadable.

    Args:
        path: The file.
        what: Its role, e.g. ``"scene 'khumbu' band file"``.

    Returns:
        The open dataset (close it, or use it as a context manager).

    Raises:
        GlacierFileNotFoundError: If it does not exist.
        GlacierFileError: If GDAL cannot read it.
        GlacierEnvironmentError: If it is a VRT whose source file is missing (GDAL opens it
            and fails only when the pixels are read).
    """
    require_file(path, what)
    try:
        dataset = rasterio.open(path)
    except RasterioIOError as error:
        raise GlacierFileError(
            f"{what} {path} cannot be read as a raster ({one_line(error)}); check that it is a "
            "complete GeoTIFF (re-copy or re-export it)"
        ) from error
    sources = [f for f in dataset.files[1:] if not str(f).startswith("/vsi")]
    missing = [f for f in sources if not Path(f).exists()]
    if missing:
        dataset.close()
        raise GlacierEnvironmentError(
            errno.ENOENT,
            f"{what} {path} reads {missing[0]}, which does not exist ({len(missing)} of its "
            f"{len(sources)} source file(s) missing); restore it or rebuild {Path(path).name}, "
            "then re-run",
            str(missing[0]),
        )
    return dataset


def read_header(path: Path, what: str) -> RasterHeader:
    """Read a raster's header (opens and closes the file; no pixel is read).

    Args:
        path: The file.
        what: Its role, for messages.

    Returns:
        The header.
    """
    with open_raster(path, what) as dataset:
        return header_of(dataset, path)


def check_georeferenced(header: RasterHeader, what: str) -> None:
    """Refuse a raster without a CRS, with a rotated/skewed transform or an unsupported dtype.

    Args:
        header: The raster's header.
        what: Its role, for messages.

    Raises:
        GlacierFileError: Naming the file, the problem and the fix.
    """
    path = header.path
    if header.crs is None:
        raise GlacierFileError(
            f"{what} {path} has no CRS, so it cannot be placed on a map; assign the right one, "
            f"e.g. gdal_edit.py -a_srs EPSG:32645 {path}"
        )
    a, b, _, d, e, _ = header.transform
    if b != 0 or d != 0:
        raise GlacierFileError(
            f"{what} {path} has a rotated or skewed geotransform (transform.b={b}, "
            f"transform.d={d}), which is not supported; make it north-up first, e.g. "
            f"gdalwarp {path} north_up.tif"
        )
    if a == 0 or e == 0:
        raise GlacierFileError(f"{what} {path} has a zero pixel size in its geotransform")
    unsupported = sorted(set(header.dtypes) - SUPPORTED_DTYPES)
    if unsupported:
        raise GlacierFileError(
            f"{what} {path} has band data type(s) {unsupported}; supported: "
            f"{sorted(SUPPORTED_DTYPES)} (convert with gdal_translate -ot Float32)"
        )


def check_band_count(header: RasterHeader, bands: Sequence[str], what: str) -> None:
    """Refuse a file whose band count differs from the band names configured for it.

    Args:
        header: The file's header.
        bands: Configured band names, one per band of the file.
        what: Its role, for messages.

    Raises:
        GlacierFileError: Naming the file, both counts and the names.
    """
    if header.count != len(bands):
        raise GlacierFileError(
            f"{what} {header.path} has {header.count} band(s) but the data config names "
            f"{len(bands)}: {list(bands)}; give one name per band of the file, in order"
        )


def check_scene_size(header: RasterHeader, what: str) -> None:
    """Refuse a grid smaller than 2×2 pixels (nothing can be sliced or mapped from it).

    Args:
        header: Header of the file that defines the scene grid.
        what: Its role, for messages.

    Raises:
        GlacierFileError: If it is narrower or shorter than 2 pixels.
    """
    if header.width < 2 or header.height < 2:
        raise GlacierFileError(
            f"{what} {header.path} is {header.width}×{header.height} px; a scene needs at "
            "least 2×2 pixels (check the file is the full scene, not a stub)"
        )


def grid_box(transform: Affine, width: int, height: int) -> shapely.Polygon:
    """The footprint of a north-up grid as a box in its CRS."""
    x0, y0 = transform @ (0, 0)
    x1, y1 = transform @ (width, height)
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def representable_nodata(nodata: float | None, dtype: str) -> float | None:
    """``nodata`` if a pixel of ``dtype`` can hold it (else None: no pixel can equal it).

    Args:
        nodata: Declared or configured nodata value.
        dtype: Band data type.

    Returns:
        The value, or None.
    """
    if nodata is None:
        return None
    kind = np.dtype(dtype)
    if kind.kind == "f":
        return float(nodata)
    if np.isnan(nodata) or not float(nodata).is_integer():
        return None
    info = np.iinfo(kind)
    return float(nodata) if info.min <= nodata <= info.max else None


def has_dataset_mask(reader: DatasetReader | WarpedVRT) -> bool:
    """Whether a file read as it is carries a per-dataset mask (e.g. an internal TIFF mask).

    A warp applies such a mask itself, so a :class:`~rasterio.vrt.WarpedVRT` gives False.
    """
    if isinstance(reader, WarpedVRT):
        return False
    return any(MaskFlags.per_dataset in flags for flags in reader.mask_flag_enums)
