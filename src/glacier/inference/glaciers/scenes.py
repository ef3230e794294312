"""Per-glacier answers for the scenes of one prediction run: each scene, then the whole run.

Each scene writes ``<scene>_per_glacier.gpkg``/``.csv`` (its own table) and
``<scene>_per_glacier.npz`` (its sums). The run's table, ``per_glacier.gpkg``/``.csv``, adds the
sums of every scene of the run: a glacier cut by one scene's edge is completed by its
neighbour, and where scenes overlap each place is counted by the first scene only (a scene
excludes the footprints of the scenes before it in the run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely

from glacier.data.labels import Inventory
from glacier.data.raster import row_pixel_areas_km2
from glacier.inference.glaciers.assign import SceneGrid, assign_pixels
from glacier.inference.glaciers.counts import GlacierSums, PassMaps, scene_sums
from glacier.inference.glaciers.table import glacier_table, write_glacier_table
from glacier.inference.output_names import PER_GLACIER, RUN_PER_GLACIER, output_path

EDGE_POINTS = 32  # points per footprint edge when reprojecting between scene CRSs


@dataclass(frozen=True)
class SceneFootprint:
    """Where a scene of the run lies (for excluding overlaps and for edge flags).

    Attributes:
        scene: Scene id.
        crs: Its CRS.
        box: Its grid's bounds, a polygon in its CRS.
    """

    scene: str
    crs: object
    box: shapely.Polygon

    def in_crs(self, crs: object) -> shapely.Geometry:
        """The footprint reprojected to ``crs`` (edges densified first)."""
        length = max(self.box.length / (4 * EDGE_POINTS), 1e-9)
        dense = shapely.segmentize(self.box, length)
        return gpd.GeoSeries([dense], crs=self.crs).to_crs(crs).iat[0]


def earlier_footprints(
    footprints: Sequence[SceneFootprint], scene: str, crs: object
) -> shapely.Geometry | None:
    """The union of the footprints of the scenes before ``scene`` in the run, in ``crs``."""
    names = [f.scene for f in footprints]
    before = footprints[: names.index(scene)] if scene in names else []
    if not before:
        return None
    return shapely.union_all([f.in_crs(crs) for f in before])


def read_class_map(class_tif: Path) -> tuple[np.ndarray, SceneGrid]:
    """A finished class map and its grid."""
    with rasterio.open(class_tif) as src:
        return src.read(1), SceneGrid.of(class_tif)


def scene_glacier_sums(
    inventory: Inventory,
    class_tif: Path,
    class_names: Sequence[str],
    exclude: shapely.Geometry | None = None,
    pass_classes: PassMaps | None = None,
) -> tuple[GlacierSums, np.ndarray]:
    """Per-glacier sums of one mapped scene, and which outlines its edge cuts.

    Args:
        inventory: The inventory.
        class_tif: The scene's ``_classes.tif``.
        class_names: The model's classes (background excluded).
        exclude: Area already counted by earlier scenes of the run (scene CRS).
        pass_classes: Optional class maps of each MC pass / member (e.g. the scene's
            ``_passes.tif``: :class:`~glacier.inference.glaciers.counts.FilePasses`).

    Returns:
        The sums and the (N,) cut flags.
    """
    classes, grid = read_class_map(class_tif)
    pixels = assign_pixels(inventory, grid, inventory.settings.buffer_m, exclude)
    areas = row_pixel_areas_km2(grid.transform, grid.crs, grid.height)
    glacier_classes = tuple(range(1, len(class_names) + 1))
    sums = scene_sums(
        pixels, classes, glacier_classes, areas, len(inventory), len(class_names) + 1, pass_classes
    )
    return sums, pixels.cut


def write_scene_tables(
    inventory: Inventory,
    sums: GlacierSums,
    cut: np.ndarray,
    class_names: Sequence[str],
    prefix: Path,
) -> dict[str, str]:
    """Write a scene's table and sums; the paths, by result key."""
    base = output_path(prefix, PER_GLACIER)
    gpkg, csv = write_glacier_table(glacier_table(inventory, sums, class_names, cut), base)
    npz = base.with_name(base.name + ".npz")
    sums.save(npz)
    return {"per_glacier": str(gpkg), "per_glacier_csv": str(csv), "per_glacier_sums": str(npz)}


def run_cut_flags(inventory: Inventory, footprints: Sequence[SceneFootprint]) -> np.ndarray:
    """(N,) True where an outline reaches beyond the union of the run's scene footprints."""
    crs = inventory.frame.crs
    union = shapely.union_all([f.in_crs(crs) for f in footprints])
    beyond: np.ndarray = ~inventory.frame.geometry.within(union).to_numpy()
    return beyond


def write_run_table(
    inventory: Inventory,
    scene_sums_paths: Sequence[Path],
    footprints: Sequence[SceneFootprint],
    class_names: Sequence[str],
    out_dir: Path,
) -> gpd.GeoDataFrame:
    """Add the sums of every scene of the run and write ``per_glacier.gpkg``/``.csv``.

    Returns:
        The run's table.
    """
    total = GlacierSums.load(scene_sums_paths[0])
    for path in scene_sums_paths[1:]:
        total = total + GlacierSums.load(path)
    table = glacier_table(inventory, total, class_names, run_cut_flags(inventory, footprints))
    write_glacier_table(table, out_dir / RUN_PER_GLACIER)
    return table
