"""Per-glacier areas against an inventory, on generated grids with known answers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import Geod
from rasterio.crs import CRS

from glacier.data.contract import IGNORE_INDEX, QaMask
from glacier.data.labels import Inventory, InventorySettings, load_inventory
from glacier.data.raster import row_pixel_areas_km2
from glacier.inference.glaciers import (
    ArrayPasses,
    GlacierSums,
    SceneFootprint,
    SceneGrid,
    assign_pixels,
    earlier_footprints,
    glacier_table,
    pass_interval,
    scene_glacier_sums,
    write_run_table,
    write_scene_tables,
)

UTM = CRS.from_epsg(32645)
PIXEL = 30.0
PIXEL_KM2 = PIXEL * PIXEL / 1e6
ORIGIN = (480_000.0, 3_100_000.0)


def grid(width: int, height: int, x0: float = ORIGIN[0]) -> SceneGrid:
    return SceneGrid(Affine(PIXEL, 0, x0, 0, -PIXEL, ORIGIN[1]), UTM, height, width)


def pixel_box(col0: int, row0: int, col1: int, row1: int, x0: float = ORIGIN[0]) -> shapely.Polygon:
    """The box covering pixels [col0, col1) × [row0, row1) of a grid starting at x0."""
    return shapely.box(
        x0 + col0 * PIXEL, ORIGIN[1] - row1 * PIXEL, x0 + col1 * PIXEL, ORIGIN[1] - row0 * PIXEL
    )


def write_inventory(path: Path, outlines: list[shapely.Polygon], **columns: list[object]) -> Path:
    ids = [f"RGI60-15.{i:05d}" for i in range(len(outlines))]
    frame = gpd.GeoDataFrame({"RGIId": ids, **columns}, geometry=outlines, crs=UTM)
    frame.to_file(path, driver="GPKG")
    return path


def inventory(path: Path, buffer_m: float = 0.0, **kw: object) -> Inventory:
    settings = {"area_column": "Area", **kw}
    return load_inventory(InventorySettings(path, buffer_m=buffer_m, **settings))  # type: ignore[arg-type]


def write_classes(path: Path, classes: np.ndarray, scene: SceneGrid) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=scene.width,
        height=scene.height,
        count=1,
        dtype="uint8",
        crs=scene.crs,
        transform=scene.transform,
        nodata=IGNORE_INDEX,
    ) as dst:
        dst.write(classes, 1)
    return path


def test_touching_glaciers_split_by_nearest_outline_and_each_pixel_once(tmp_path: Path) -> None:
    left, right = pixel_box(5, 5, 15, 15), pixel_box(15, 5, 25, 15)  # share the edge x = 15
    inv = inventory(write_inventory(tmp_path / "inv.gpkg", [left, right], Area=[0.09, 0.09]), 60.0)
    pixels = assign_pixels(inv, grid(30, 20), buffer_m=60.0)
    assert (pixels.ids[5:15, 5:15] == 1).all() and (pixels.ids[5:15, 15:25] == 2).all()
    # two pixels of buffer on each free side, nearest outline wins: rows above left go to 1
    assert (pixels.ids[3:5, 5:15] == 1).all() and (pixels.ids[3:5, 15:25] == 2).all()
    assert (pixels.ids[5:15, 3:5] == 1).all() and (pixels.ids[5:15, 25:27] == 2).all()
    assert (pixels.ids[5:15, 2] == 0).all() and (pixels.ids[5:15, 27] == 0).all()
    # 200 inside; a 2-px band (Euclidean) around the 20 × 10 union: 2 × (2 × 20 + 2 × 10)
    # plus one pixel at each corner (offset (1, 1): √2 px ≤ 2; (1, 2) is √5 > 2)
    assert pixels.inside.sum() == 200 and (pixels.ids > 0).sum() == 200 + 120 + 4
    classes = np.ones((20, 30), dtype=np.uint8)  # everything mapped as glacier
    path = write_classes(tmp_path / "s_classes.tif", classes, grid(30, 20))
    sums, _ = scene_glacier_sums(inv, path, ["glacier"])
    mapped = sums.mapped_km2[:, 1]
    assert mapped.sum() == pytest.approx((pixels.ids > 0).sum() * PIXEL_KM2)  # each pixel once
    assert mapped[0] == pytest.approx(mapped[1])  # symmetric split


def test_a_glacier_shrunk_by_a_known_number_of_pixels_is_reported_exactly(tmp_path: Path) -> None:
    outline = pixel_box(4, 4, 14, 12)  # 10 × 8 = 80 pixels
    inv = inventory(write_inventory(tmp_path / "inv.gpkg", [outline], Area=[0.072]))
    classes = np.zeros((20, 20), dtype=np.uint8)
    classes[4:12, 4:14] = 1
    classes[4:12, 4:7] = 0  # the snout retreated by 3 columns: 24 pixels
    path = write_classes(tmp_path / "s_classes.tif", classes, grid(20, 20))
    sums, cut = scene_glacier_sums(inv, path, ["glacier"])
    table = glacier_table(inv, sums, ["glacier"], cut)
    row = table.iloc[0]
    assert row["reference_km2"] == pytest.approx(80 * PIXEL_KM2)
    assert row["mapped_km2"] == pytest.approx(56 * PIXEL_KM2)
    assert row["difference_km2"] == pytest.approx(-24 * PIXEL_KM2)
    assert row["difference_pct"] == pytest.approx(-30.0)
    assert row["inventory_area_km2"] == pytest.approx(0.072) and row["status"] == "observed"
    # boundary interval: half a pixel along the 7 × 8 block's perimeter (2 × (7 + 8) edges)
    assert row["boundary_high_km2"] - row["mapped_km2"] == pytest.approx(15 * PIXEL_KM2)
    assert not row["cut_by_edge"] and row["nodata_share"] == 0.0


def test_nodata_inside_an_outline_is_flagged_not_lost(tmp_path: Path) -> None:
    inv = inventory(write_inventory(tmp_path / "inv.gpkg", [pixel_box(0, 0, 10, 10)], Area=[0.09]))
    classes = np.ones((12, 12), dtype=np.uint8)
    classes[0:10, 0:4] = IGNORE_INDEX  # a cloud over 40 of its 100 pixels
    path = write_classes(tmp_path / "s_classes.tif", classes, grid(12, 12))
    sums, cut = scene_glacier_sums(inv, path, ["glacier"])
    row = glacier_table(inv, sums, ["glacier"], cut).iloc[0]
    assert row["nodata_share"] == pytest.approx(0.4)
    assert row["reference_km2"] == pytest.approx(60 * PIXEL_KM2)
    assert row["mapped_km2"] == pytest.approx(60 * PIXEL_KM2)
    assert row["status"] == "partly observed"
    classes[:] = IGNORE_INDEX
    write_classes(path, classes, grid(12, 12))
    sums, cut = scene_glacier_sums(inv, path, ["glacier"])
    assert glacier_table(inv, sums, ["glacier"], cut).iloc[0]["status"] == "unobserved"


def test_an_edge_crossing_glacier_is_merged_across_two_scenes(tmp_path: Path) -> None:
    west, east = grid(20, 10), grid(20, 10, x0=ORIGIN[0] + 20 * PIXEL)
    outline = pixel_box(14, 2, 26, 8)  # 12 × 6 = 72 pixels, 6 columns in each scene
    inv = inventory(write_inventory(tmp_path / "inv.gpkg", [outline], Area=[0.0648]))
    paths, footprints = [], []
    for name, scene in (("west", west), ("east", east)):
        path = write_classes(tmp_path / f"{name}_classes.tif", np.ones((10, 20), np.uint8), scene)
        sums, cut = scene_glacier_sums(inv, path, ["glacier"])
        assert cut[0] and sums.reference_km2[0] == pytest.approx(36 * PIXEL_KM2)
        written = write_scene_tables(inv, sums, cut, ["glacier"], tmp_path / name)
        paths.append(Path(written["per_glacier_sums"]))
        footprints.append(SceneFootprint(name, UTM, scene.box))
    table = write_run_table(inv, paths, footprints, ["glacier"], tmp_path)
    row = table.iloc[0]
    assert row["reference_km2"] == pytest.approx(72 * PIXEL_KM2)
    assert not row["cut_by_edge"] and row["scenes"] == 2
    csv = gpd.pd.read_csv(tmp_path / "per_glacier.csv")
    assert csv.loc[0, "glacier_id"] == "RGI60-15.00000"
    assert gpd.read_file(tmp_path / "per_glacier.gpkg").crs == UTM


def test_overlapping_scenes_count_each_place_once(tmp_path: Path) -> None:
    first, second = grid(20, 10), grid(20, 10, x0=ORIGIN[0] + 10 * PIXEL)  # 10 columns overlap
    inv = inventory(write_inventory(tmp_path / "inv.gpkg", [pixel_box(12, 2, 18, 8)], Area=[0.03]))
    footprints = [SceneFootprint("a", UTM, first.box), SceneFootprint("b", UTM, second.box)]
    total = GlacierSums.zeros(1, 2)
    for name, scene in (("a", first), ("b", second)):
        path = write_classes(tmp_path / f"{name}.tif", np.ones((10, 20), np.uint8), scene)
        exclude = earlier_footprints(footprints, name, UTM)
        sums, _ = scene_glacier_sums(inv, path, ["glacier"], exclude=exclude)
        total = total + sums
    assert total.reference_km2[0] == pytest.approx(36 * PIXEL_KM2)


def test_pass_intervals_are_min_max_below_twenty_passes_then_quantiles() -> None:
    few = np.array([[1.0, 5.0], [3.0, 4.0], [2.0, 6.0]])
    low, high = pass_interval(few)
    assert low.tolist() == [1.0, 4.0] and high.tolist() == [3.0, 6.0]
    many = np.arange(1, 101, dtype=float)[:, None]
    low, high = pass_interval(many)
    assert low[0] == pytest.approx(5.95) and high[0] == pytest.approx(95.05)
    assert np.isnan(pass_interval(np.zeros((0, 3)))[0]).all()


def test_pass_areas_give_the_table_its_interval(tmp_path: Path) -> None:
    inv = inventory(write_inventory(tmp_path / "inv.gpkg", [pixel_box(0, 0, 10, 10)], Area=[0.09]))
    classes = np.ones((10, 10), dtype=np.uint8)
    passes = np.ones((3, 10, 10), dtype=np.uint8)
    passes[0, :, :2] = 0  # pass 0 misses 20 pixels
    passes[2, :, :1] = 0  # pass 2 misses 10
    path = write_classes(tmp_path / "s.tif", classes, grid(10, 10))
    sums, cut = scene_glacier_sums(inv, path, ["glacier"], pass_classes=ArrayPasses(passes))
    row = glacier_table(inv, sums, ["glacier"], cut).iloc[0]
    assert row["passes"] == 3
    assert row["passes_low_km2"] == pytest.approx(80 * PIXEL_KM2)
    assert row["passes_high_km2"] == pytest.approx(100 * PIXEL_KM2)


def test_geographic_grids_sum_true_areas() -> None:
    transform = Affine(0.001, 0, 86.8, 0, -0.001, 28.0)
    areas = row_pixel_areas_km2(transform, CRS.from_epsg(4326), 100)
    geod = Geod(ellps="WGS84")
    true, _ = geod.polygon_area_perimeter([86.8, 86.9, 86.9, 86.8], [28.0, 28.0, 27.9, 27.9])
    assert areas.sum() * 100 == pytest.approx(abs(true) / 1e6, rel=1e-6)
    assert areas[0] < areas[-1]  # pixels grow towards the equator


def test_qa_bits_of_a_generated_band_are_decoded() -> None:
    clear, fill = 0b0, 0b1
    cloud = 1 << 4 | 3 << 5  # cloud bit + high cloud confidence
    medium_cloud = 2 << 5
    low_cloud = 1 << 5
    shadow_high = 3 << 7
    snow = 3 << 9
    qa = np.array([[clear, fill, cloud, medium_cloud, low_cloud, shadow_high, snow]], float)
    flagged = QaMask("BQA").flagged(qa)[0]
    assert flagged.tolist() == [False, True, True, True, False, True, False]
    strict = QaMask("BQA", ("cloud",), "high").flagged(qa)[0]
    assert strict.tolist() == [False, False, True, False, False, False, False]
    assert QaMask("BQA", ("snow_ice",), "high").flagged(qa)[0].tolist()[-1]
    assert not QaMask("BQA").flagged(np.array([np.nan]))[0]


def test_inventory_errors_name_the_file_and_column(tmp_path: Path) -> None:
    from glacier.errors import GlacierInputError

    path = write_inventory(tmp_path / "inv.gpkg", [pixel_box(0, 0, 2, 2)] * 2, Area=[1.0, 2.0])
    frame = gpd.read_file(path)
    frame["RGIId"] = ["same", "same"]
    frame.to_file(tmp_path / "dup.gpkg")
    with pytest.raises(GlacierInputError, match=r"dup.gpkg.*RGIId must be unique"):
        inventory(tmp_path / "dup.gpkg")
    with pytest.raises(GlacierInputError, match=r"inv.gpkg has no column\(s\) \['Glac'\]"):
        inventory(path, id_column="Glac")


def test_everest_reference_areas_add_up_to_the_scene_evaluation(tmp_path: Path) -> None:
    """On the embedded sample, each reference pixel belongs to exactly one RGI glacier."""
    from glacier.data.labels import load_outlines
    from glacier.data.raster import open_scene
    from glacier.data.spec import DataSpec, sample_path
    from glacier.inference.evaluation import evaluate_scene, reference_class_map

    outlines_file = sample_path("glacier_outlines.gpkg")
    data = DataSpec(
        name="everest",
        classes=["glacier"],
        labels=[{"path": outlines_file, "class_name": "glacier"}],
        scenes=[
            {
                "id": "LE71400412000304SGS00",
                "sources": [
                    {
                        "path": sample_path("LE71400412000304SGS00_RGB.TIF"),
                        "bands": ["red", "green", "blue"],
                    },
                    {"path": sample_path("LE71400412000304SGS00_B4_crop.TIF"), "bands": ["nir"]},
                ],
            }
        ],
    )
    with open_scene(data.scenes[0], data) as reader:
        truth = reference_class_map(load_outlines(data), ["glacier"], reader)
        scene = SceneGrid(reader.transform, reader.crs, reader.height, reader.width)
    classes = write_classes(tmp_path / "everest_classes.tif", truth, scene)
    evaluation = evaluate_scene(classes, truth, ["glacier"])
    settings = InventorySettings(Path(outlines_file), area_column="Area", date_column="BgnDate")
    inv = load_inventory(settings)
    assert len(inv) == 86
    sums, cut = scene_glacier_sums(inv, classes, ["glacier"])
    table = glacier_table(inv, sums, ["glacier"], cut)
    reference = evaluation["areas_km2"]["reference"]["glacier"]
    assert table["reference_km2"].sum() == pytest.approx(reference, rel=1e-3)
    assert table["mapped_km2"].sum() >= table["reference_km2"].sum()  # buffers add, never lose
    assert set(table["inventory_date"]) <= {"2000-10-30", "2002-01-05", "2010-04-09"}
    big = table.sort_values("inventory_area_km2").iloc[-1]
    assert big["inventory_area_km2"] > 10 and big["reference_km2"] > 0
