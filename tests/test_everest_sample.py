"""The embedded real sample: Landsat 7 Everest crop + 86 RGI 6.0 outlines."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import compose_config
from scene_files import slice_window

from glacier.data.contract import load_contract
from glacier.data.labels import load_outlines
from glacier.data.spec import sample_dir
from glacier.tasks.preprocess import run_preprocess


@pytest.fixture(scope="module")
def everest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("everest")
    cfg = compose_config("preprocess", [], root)
    run_preprocess(cfg)
    return root / "data" / "processed" / "everest"


def test_sample_files_are_located_without_importing_geoutils() -> None:
    import sys

    folder = sample_dir()
    assert (folder / "glacier_outlines.gpkg").is_file()
    assert "geoutils" not in sys.modules


def test_polygons_cover_about_54_percent(everest: Path) -> None:
    meta = pd.read_csv(everest / "mask_metadata.csv")
    assert meta.loc[0, "polygons_glacier"] == 86
    mask = np.load(everest / meta.loc[0, "mask"])
    assert mask.shape == (655, 800, 1)
    assert 0.52 < (mask == 1).mean() < 0.56
    assert meta.loc[0, "fraction_glacier"] == pytest.approx((mask == 1).mean())


def test_date_filter_2000_keeps_33_polygons(compose_in) -> None:  # type: ignore[no-untyped-def]
    from hydra.utils import instantiate

    cfg = compose_in("preprocess", ["data.date_filter={column: BgnDate, year: 2000, tolerance: 2}"])
    outlines = load_outlines(instantiate(cfg.data, _convert_="all"))
    assert sum(len(f) for f in outlines.frames["glacier"]) == 33
    assert outlines.reports["glacier"].outside_dates == 53


def test_slice_footprints_match_the_image(everest: Path) -> None:
    slices = gpd.read_file(everest / "slices" / "slices.geojson")
    assert slices.crs.to_epsg() == 4326
    row = slices[(slices.row_off == 64) & (slices.col_off == 2 * 64)].iloc[0]
    image = slice_window(everest, row)[0]
    rgb = Path(sample_dir()) / "LE71400412000304SGS00_RGB.TIF"
    with rasterio.open(rgb) as src:
        window = src.window(row.x_min, row.y_min, row.x_max, row.y_max)
        assert (window.row_off, window.col_off) == (row.row_off, row.col_off)
        expected = src.read(window=window).astype(np.float32)
        assert src.crs.to_string() == row["crs"]
    np.testing.assert_array_equal(np.moveaxis(image[..., :3], -1, 0), expected)


def test_pixels_are_stored_once_in_their_source_dtypes(everest: Path) -> None:
    contract, info = load_contract(everest)
    assert contract.channel_names == ["red", "green", "blue", "nir", "ndvi", "ndwi"]
    assert [c.formula for c in contract.channels[4:]] == [
        "(nir-red)/(nir+red)",
        "(green-nir)/(green+nir)",
    ]
    bands = np.load(everest / "scenes" / "LE71400412000304SGS00" / "image_uint8.npy", mmap_mode="r")
    indices = np.load(
        everest / "scenes" / "LE71400412000304SGS00" / "image_float16.npy", mmap_mode="r"
    )
    assert bands.dtype == np.uint8 and bands.shape == (655, 800, 4)
    assert indices.dtype == np.float16 and indices.shape == (655, 800, 2)
    with rasterio.open(Path(sample_dir()) / "LE71400412000304SGS00_RGB.TIF") as src:
        np.testing.assert_array_equal(np.moveaxis(src.read(), 0, -1), bands[..., :3])
    # nothing normalized on disk, no per-split copies: the index names windows
    assert not any((everest / split).exists() for split in ("train", "dev", "test"))
    index = pd.read_csv(everest / "splits.csv")
    assert set(index["split"]) <= {"train", "dev", "test"} and len(index) == sum(
        info.counts.values()
    )
    assert contract.stats is not None and contract.stats.pixels > 0
