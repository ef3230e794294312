"""glacier change on generated prediction runs with a known retreat between two dates."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from test_cli import glacier

from glacier.data.contract import IGNORE_INDEX
from glacier.data.labels import InventorySettings, load_inventory
from glacier.errors import GlacierInputError
from glacier.inference.change import (
    GAIN,
    LOSS,
    STABLE_GLACIER,
    ChangeSettings,
    compare_runs,
    load_run,
)

CRS = "EPSG:32645"
PIXEL = 30.0
PIXEL_KM2 = PIXEL * PIXEL / 1e6
X0, Y0 = 480_000.0, 3_100_000.0
BEFORE_ID = "LE07_L1TP_140041_20001030_20170208_01_T1"
AFTER_ID = "LE07_L1TP_140041_20101105_20170208_01_T1"
YEARS = 3658 / 365.25  # 2000-10-30 → 2010-11-05


def box(col0: int, row0: int, col1: int, row1: int) -> shapely.Polygon:
    return shapely.box(X0 + col0 * PIXEL, Y0 - row1 * PIXEL, X0 + col1 * PIXEL, Y0 - row0 * PIXEL)


def write_run(
    folder: Path,
    scene: str,
    classes: np.ndarray,
    col_off: int = 0,
    checkpoint: str = "abc",
    class_names: tuple[str, ...] = ("glacier",),
) -> Path:
    """A prediction folder as glacier predict leaves it: a class map and the scene's record."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{scene}_classes.tif"
    transform = Affine(PIXEL, 0, X0 + col_off * PIXEL, 0, -PIXEL, Y0)
    height, width = classes.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="uint8",
        crs=CRS,
        transform=transform,
        nodata=IGNORE_INDEX,
    ) as dst:
        dst.write(classes, 1)
    record = {
        "scene": scene,
        "classes": str(path),
        "checkpoint_sha256": checkpoint,
        "class_names": list(class_names),
    }
    (folder / f"{scene}_prediction.json").write_text(json.dumps(record))
    return folder


def inventory_file(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.gpkg"
    frame = gpd.GeoDataFrame(
        {"RGIId": ["G1", "G2"], "Area": [0.072, 0.036]},
        geometry=[box(4, 4, 14, 12), box(20, 4, 26, 10)],
        crs=CRS,
    )
    frame.to_file(path)
    return path


def maps() -> tuple[np.ndarray, np.ndarray]:
    """Before: G1 (10 × 8 px) and G2 (6 × 6 px) glacier; after: G1 retreated by 3 columns."""
    before = np.zeros((16, 30), dtype=np.uint8)
    before[4:12, 4:14] = 1
    before[4:10, 20:26] = 1
    after = before.copy()
    after[4:12, 4:7] = 0  # 24 pixels lost
    return before, after


def compare(tmp_path: Path, before: Path, after: Path, **kw: object):  # type: ignore[no-untyped-def]
    settings = InventorySettings(inventory_file(tmp_path), area_column="Area", buffer_m=0.0)
    return compare_runs(
        load_run(before, "before"),
        load_run(after, "after"),
        tmp_path / "change",
        load_inventory(settings),
        ChangeSettings(**kw),  # type: ignore[arg-type]
    )


def test_a_known_retreat_gives_its_change_exactly_with_intervals_covering_it(
    tmp_path: Path,
) -> None:
    before, after = maps()
    result = compare(
        tmp_path,
        write_run(tmp_path / "a", BEFORE_ID, before),
        write_run(tmp_path / "b", AFTER_ID, after),
    )
    table = result.table.set_index("glacier_id")
    g1, g2 = table.loc["G1"], table.loc["G2"]
    assert g1["before_km2"] == pytest.approx(80 * PIXEL_KM2)
    assert g1["after_km2"] == pytest.approx(56 * PIXEL_KM2)
    assert g1["change_km2"] == pytest.approx(-24 * PIXEL_KM2)
    assert g1["change_pct"] == pytest.approx(-30.0)
    assert g1["years"] == pytest.approx(YEARS)
    assert g1["change_pct_per_year"] == pytest.approx(-30.0 / YEARS)
    assert g1["change_low_km2"] <= g1["change_km2"] <= g1["change_high_km2"]
    assert g2["change_km2"] == 0.0 and g2["change_low_km2"] <= 0.0 <= g2["change_high_km2"]
    assert (g1["before_date"], g1["after_date"]) == ("2000-10-30", "2010-11-05")
    with rasterio.open(result.maps[AFTER_ID]) as src:
        change = src.read(1)
        assert src.crs == CRS and src.tags(1)["class_2"] == "loss"
    assert (change == LOSS).sum() == 24 and (change == STABLE_GLACIER).sum() == 56 + 36
    assert not (change == GAIN).any()
    summary = json.loads((tmp_path / "change" / "change_summary.json").read_text())
    assert summary["pixels"]["loss_km2"] == pytest.approx(24 * PIXEL_KM2)
    assert summary["glaciers"]["change_km2"] == pytest.approx(-24 * PIXEL_KM2)
    item = json.loads(result.items[AFTER_ID].read_text())
    assert item["properties"]["start_datetime"].startswith("2000-10-30")
    assert {"change", "change_per_glacier"} <= set(item["assets"])
    csv = pd.read_csv(tmp_path / "change" / "change_per_glacier.csv")
    assert list(csv["glacier_id"]) == ["G1", "G2"]


def test_unobserved_pixels_never_count_as_loss(tmp_path: Path) -> None:
    before, after = maps()
    after = before.copy()
    after[4:12, 10:14] = IGNORE_INDEX  # a cloud over 32 px of G1 at the later date
    before[4:10, 20:23] = IGNORE_INDEX  # SLC-off stripe over 18 px of G2 at the earlier date
    result = compare(
        tmp_path,
        write_run(tmp_path / "a", BEFORE_ID, before),
        write_run(tmp_path / "b", AFTER_ID, after),
    )
    table = result.table.set_index("glacier_id")
    assert table.loc["G1", "change_km2"] == 0.0 and table.loc["G2", "change_km2"] == 0.0
    assert table.loc["G1", "before_km2"] == pytest.approx(48 * PIXEL_KM2)  # the common pixels
    assert table.loc["G1", "observed_share"] == pytest.approx(48 / 80)
    assert result.summary["pixels"]["loss_km2"] == 0.0


def test_runs_on_different_grids_are_warped_onto_one(tmp_path: Path) -> None:
    before, after = maps()
    shifted = np.zeros((16, 40), dtype=np.uint8)
    shifted[:, 5:35] = before  # the before map on a grid starting 5 px further west
    result = compare(
        tmp_path,
        write_run(tmp_path / "a", BEFORE_ID, shifted, col_off=-5),
        write_run(tmp_path / "b", AFTER_ID, after),
    )
    assert result.table.set_index("glacier_id").loc["G1", "change_km2"] == pytest.approx(
        -24 * PIXEL_KM2
    )


@pytest.mark.parametrize(
    ("before_kw", "after_id", "settings", "message"),
    [
        ({"class_names": ("clean_ice", "debris")}, AFTER_ID, {}, "maps classes"),
        ({"checkpoint": "other"}, AFTER_ID, {}, "different checkpoints"),
        ({}, "scene_without_date", {}, "no acquisition date for scene"),
        ({"col_off": 100}, AFTER_ID, {}, "do not overlap"),
    ],
)
def test_misleading_comparisons_are_refused_in_one_line(
    tmp_path: Path, before_kw: dict, after_id: str, settings: dict, message: str
) -> None:
    before, after = maps()
    a = write_run(tmp_path / "a", BEFORE_ID, before, **before_kw)
    b = write_run(tmp_path / "b", after_id, after)
    with pytest.raises(GlacierInputError, match=message) as error:
        compare(tmp_path, a, b, **settings)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "change").exists()  # nothing written


def test_stated_dates_and_allowed_checkpoints_let_a_comparison_through(tmp_path: Path) -> None:
    before, after = maps()
    from datetime import date

    result = compare(
        tmp_path,
        write_run(tmp_path / "a", "undated_a", before, checkpoint="x"),
        write_run(tmp_path / "b", "undated_b", after, checkpoint="y"),
        before_date=date(2000, 1, 1),
        after_date=date(2005, 1, 1),
        allow_different_checkpoints=True,
    )
    g1 = result.table.set_index("glacier_id").loc["G1"]
    assert g1["years"] == pytest.approx(1827 / 365.25)


def test_the_change_command_as_the_readme_types_it(tmp_path: Path) -> None:
    before, after = maps()
    a = write_run(tmp_path / "a", BEFORE_ID, before)
    b = write_run(tmp_path / "b", AFTER_ID, after)
    done = glacier(
        [
            "change",
            f"before={a}",
            f"after={b}",
            f"inventory={inventory_file(tmp_path)}",
            "per_glacier.buffer_m=0",
            "per_glacier.date_column=null",
            f"out_dir={tmp_path}/change",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "change -0.02 km²" in done.stdout and "G1" in done.stdout
    assert (tmp_path / "change" / f"{AFTER_ID}_change.tif").is_file()
    refused = glacier(["change", f"before={a}", f"after={tmp_path}/missing"], tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"glacier change: error: after={tmp_path}/missing: no such folder"
    ]


def write_band(path: Path, data: np.ndarray) -> Path:
    """A one-band uint8 GeoTIFF of (1, 16, 30) pixels on the tests' grid."""
    profile = {"driver": "GTiff", "width": 30, "height": 16, "count": 1, "dtype": "uint8"}
    transform = Affine(PIXEL, 0, X0, 0, -PIXEL, Y0)
    with rasterio.open(path, "w", **profile, crs=CRS, transform=transform) as dst:
        dst.write(data)
    return path


def test_a_generated_retreat_is_what_change_reports(tmp_path: Path) -> None:
    """The second-date generator removes a known ring; change on thresholded maps finds it."""
    from glacier.data.spec import apply_retreat

    scene = np.full((1, 16, 30), 50, dtype=np.uint8)  # rock
    scene[0, 4:12, 4:14] = 200  # G1's ice
    scene[0, 4:10, 20:26] = 200  # G2's ice
    original = write_band(tmp_path / "LE71400412000304SGS00.tif", scene)
    outlines = gpd.read_file(inventory_file(tmp_path))
    retreat = apply_retreat(
        [original], outlines, ["G1"], "RGIId", 2, tmp_path / "later", ["LE71400412010308SGS00"]
    )
    assert retreat.lost.set_index("glacier_id").loc["G1", "pixels"] == 80 - 6 * 4
    with rasterio.open(retreat.files[0]) as src:
        later = src.read(1)
    assert (later[4:12, 4:14] == 200).sum() == 24 and (later[4:10, 20:26] == 200).all()
    runs = [
        write_run(tmp_path / name, scene_id, (image > 100).astype(np.uint8))
        for name, scene_id, image in (
            ("a", BEFORE_ID, scene[0]),
            ("b", AFTER_ID, later),
        )
    ]
    table = compare(tmp_path, *runs).table.set_index("glacier_id")
    assert table.loc["G1", "change_km2"] == pytest.approx(-retreat.lost["km2"].iloc[0])


def test_the_retreating_glaciers_are_the_largest_wholly_inside_the_scene(tmp_path: Path) -> None:
    from glacier.data.spec import largest_inside

    scene = write_band(tmp_path / "scene.tif", np.zeros((1, 16, 30), dtype=np.uint8))
    outlines = gpd.GeoDataFrame(
        {"RGIId": ["small", "large", "cut", "middle"]},
        geometry=[box(1, 1, 3, 3), box(4, 4, 14, 12), box(25, 2, 40, 14), box(20, 4, 24, 10)],
        crs=CRS,
    ).to_crs("EPSG:4326")  # another CRS than the scene's: compared on the scene's grid
    assert largest_inside(outlines, scene, 2, "RGIId") == ["large", "middle"]
    assert largest_inside(outlines, scene, 9, "RGIId") == ["large", "middle", "small"]
