"""Band files off the scene grid: uncovered pixels are nodata, never valid zeros."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from raster_inputs import grid, listing, write_raster
from rasterio.windows import Window

from glacier.data.raster import SceneReader
from glacier.data.raster.derived import DemOnGrid
from glacier.data.spec import BandSource, SceneSpec
from glacier.errors import GlacierFileError


def two_file_scene(grid_file: Path, other: Path) -> SceneSpec:
    return SceneSpec(
        "khumbu", (BandSource(grid_file, ("red", "green", "blue")), BandSource(other, ("nir",)))
    )


def read_all(reader: SceneReader) -> np.ndarray:
    return reader.read_raw(Window(0, 0, reader.width, reader.height))


def test_band_shifted_100_px_is_nan_where_it_does_not_reach(tmp_path: Path) -> None:
    """The issue's case: NIR shifted 100 px on an 800 px scene; 12.5 % must be NaN, not 0."""
    rgb = write_raster(tmp_path / "rgb.tif", 800, 100, count=3)
    nir = write_raster(tmp_path / "nir.tif", 800, 100, value=90, transform=grid(col_off=100))
    with SceneReader(two_file_scene(rgb, nir)) as reader:
        stack = read_all(reader)
        assert reader.coverage == [1.0, pytest.approx(0.875)]
    nir_band = stack[3]
    assert np.isnan(nir_band[:, :100]).all()
    assert np.isnan(nir_band).mean() == pytest.approx(0.125)
    assert (nir_band[:, 100:] == 90).all()  # same grid spacing: values come through exactly
    assert not (nir_band == 0).any()
    assert np.isfinite(stack[:3]).all()  # the grid file itself is complete


def test_same_crs_smaller_file_is_nan_outside_its_extent(tmp_path: Path) -> None:
    rgb = write_raster(tmp_path / "rgb.tif", 80, 60, count=3)
    nir = write_raster(tmp_path / "nir.tif", 40, 30, value=70, transform=grid(20, 10))
    with SceneReader(two_file_scene(rgb, nir)) as reader:
        band = read_all(reader)[3]
        assert reader.coverage[1] == pytest.approx(0.25)
    assert (band[10:40, 20:60] == 70).all()
    outside = np.ones(band.shape, dtype=bool)
    outside[10:40, 20:60] = False
    assert np.isnan(band[outside]).all()


def test_declared_nodata_of_a_warped_file_is_nan(tmp_path: Path) -> None:
    rgb = write_raster(tmp_path / "rgb.tif", 80, 60, count=3)
    nir = tmp_path / "nir.tif"
    write_raster(nir, 80, 60, value=70, transform=grid(0.5, 0), nodata=0)
    with rasterio.open(nir, "r+") as dst:
        data = dst.read(1)
        data[:, :10] = 0
        dst.write(data, 1)
    with SceneReader(two_file_scene(rgb, nir)) as reader:
        band = read_all(reader)[3]
    assert np.isnan(band[:, :10]).all()  # nodata, and the half-pixel strip it does not reach
    assert (band[:, 12:79] == 70).all()
    assert not (band == 0).any()


def test_file_in_another_crs_is_nan_outside_its_footprint(tmp_path: Path) -> None:
    rgb = write_raster(tmp_path / "rgb.tif", 80, 60, count=3)
    # the scene's western half in geographic coordinates (EPSG:4326)
    from rasterio.warp import transform_bounds

    west = (478000.0, 3108140.0 - 60 * 30, 478000.0 + 40 * 30, 3108140.0)
    left, bottom, right, top = transform_bounds("EPSG:32645", "EPSG:4326", *west)
    transform = Affine((right - left) / 100, 0, left, 0, -(top - bottom) / 100, top)
    nir = write_raster(
        tmp_path / "nir.tif", 100, 100, value=80, transform=transform, crs="EPSG:4326"
    )
    with SceneReader(two_file_scene(rgb, nir)) as reader:
        band = read_all(reader)[3]
        assert reader.coverage[1] == pytest.approx(0.5, abs=0.03)
    assert np.isnan(band[:, 45:]).all()
    assert (band[2:-2, 2:38] == 80).all()
    assert np.isnan(band).mean() == pytest.approx(0.5, abs=0.05)


def test_band_file_missing_the_scene_is_refused_naming_file_and_scene(tmp_path: Path) -> None:
    rgb = write_raster(tmp_path / "rgb.tif", 80, 60, count=3)
    far = write_raster(tmp_path / "far_nir.tif", 80, 60, transform=grid(col_off=500))
    before = listing(tmp_path)
    with pytest.raises(
        GlacierFileError, match=r"scene 'khumbu' band file .*far_nir\.tif does not overlap"
    ):
        SceneReader(two_file_scene(rgb, far))
    assert listing(tmp_path) == before


def test_internal_mask_of_the_grid_file_is_nodata(tmp_path: Path) -> None:
    path = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        write_raster(path, 80, 60, count=3)
        with rasterio.open(path, "r+") as dst:
            mask = np.full((60, 80), 255, dtype=np.uint8)
            mask[:, :20] = 0
            dst.write_mask(mask)
    scene = SceneSpec("m", (BandSource(path, ("red", "green", "blue")),))
    with SceneReader(scene) as reader:
        stack = read_all(reader)
    assert np.isnan(stack[:, :, :20]).all()
    assert np.isfinite(stack[:, :, 20:]).all()


@pytest.mark.parametrize(
    ("transform", "size", "message"),
    [
        (
            Affine(30, 2, 478000, 0, -30, 3108140),
            (80, 60),
            r"rot\.tif has a rotated or skewed .*transform\.b=2",
        ),
        (grid(), (1, 1), r"rot\.tif is 1×1 px; a scene needs at least 2×2 pixels"),
    ],
)
def test_rotated_or_tiny_scene_is_refused(
    tmp_path: Path, transform: Affine, size: tuple[int, int], message: str
) -> None:
    path = write_raster(tmp_path / "rot.tif", *size, count=3, transform=transform)
    with pytest.raises(GlacierFileError, match=message):
        SceneReader(SceneSpec("r", (BandSource(path, ("red", "green", "blue")),)))


def test_dem_is_nan_outside_its_coverage(tmp_path: Path) -> None:
    dem = write_raster(
        tmp_path / "dem.tif", 40, 60, value=4000, dtype="float32", transform=grid(40, 0)
    )
    on_grid = DemOnGrid(dem, rasterio.crs.CRS.from_string("EPSG:32645"), grid(), 80, 60, "s")
    try:
        elevation = on_grid.read_elevation(Window(0, 0, 80, 60))
        assert on_grid.coverage == pytest.approx(0.5)
    finally:
        on_grid.close()
    assert np.isnan(elevation[:, :40]).all()
    assert (elevation[:, 41:] == 4000).all()


def test_dem_missing_the_scene_is_refused(tmp_path: Path) -> None:
    dem = write_raster(tmp_path / "far_dem.tif", 40, 60, dtype="float32", transform=grid(900, 0))
    with pytest.raises(
        GlacierFileError, match=r"DEM \(data\.dem\) .*far_dem\.tif does not overlap scene 's'"
    ):
        DemOnGrid(dem, rasterio.crs.CRS.from_string("EPSG:32645"), grid(), 80, 60, "s")
