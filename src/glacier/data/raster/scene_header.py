"""A scene's headers: its band files (each with its configured bands and coverage) and grid."""

from __future__ import annotations

from dataclasses import dataclass

import shapely
from rasterio.crs import CRS

from glacier.data.raster.headers import RasterHeader, grid_box


@dataclass(frozen=True)
class BandFileHeader:
    """One band file of a scene.

    Attributes:
        header: The file's raster header.
        bands: Band names configured for it.
        coverage: Fraction of the scene grid it covers (1.0 on the grid; below 1, the rest of
            the scene is nodata).
    """

    header: RasterHeader
    bands: tuple[str, ...]
    coverage: float


@dataclass(frozen=True)
class SceneHeader:
    """A scene's grid and band files, from headers only.

    Attributes:
        id: Scene id.
        files: Band files in configured order; the first sets the grid.
    """

    id: str
    files: tuple[BandFileHeader, ...]

    @property
    def grid(self) -> RasterHeader:
        """Header of the file that sets the scene grid."""
        return self.files[0].header

    @property
    def crs(self) -> CRS:
        """Scene CRS."""
        crs = self.grid.crs_object
        assert crs is not None
        return crs

    @property
    def band_names(self) -> list[str]:
        """Raw band names in order."""
        return [name for item in self.files for name in item.bands]

    @property
    def footprint(self) -> shapely.Polygon:
        """The scene grid's box in its CRS."""
        return grid_box(self.grid.affine, self.grid.width, self.grid.height)
