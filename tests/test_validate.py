"""Header checks of every input before a run writes anything, and scene fingerprints."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from affine import Affine
from raster_inputs import X0, Y0, grid, listing, spec_for, write_polygons, write_raster

from glacier.data.checks import (
    read_scene_header,
    scene_input_fingerprint,
    validate_inputs,
    validate_scenes,
)
from glacier.data.raster import SceneHeader
from glacier.errors import GlacierFileError, GlacierFileNotFoundError, GlacierInputError

RGB = ["red", "green", "blue"]


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    return write_polygons(tmp_path / "labels.gpkg", columns={"kind": ["Clean Ice"], "year": [2000]})


def good_scene(tmp_path: Path) -> list[tuple[Path, list[str]]]:
    rgb = write_raster(tmp_path / "rgb.tif", 80, 60, count=3)
    nir = write_raster(tmp_path / "nir.tif", 80, 60, transform=grid(col_off=20))
    return [(rgb, RGB), (nir, ["nir"])]


def test_good_inputs_give_typed_headers(tmp_path: Path, labels: Path) -> None:
    dem = write_raster(tmp_path / "dem.tif", 40, 60, dtype="float32", transform=grid(40, 0))
    region = write_polygons(tmp_path / "region.gpkg")
    spec = spec_for(
        [("khumbu", good_scene(tmp_path))],
        labels,
        dem=str(dem),
        region=str(region),
        derived=["slope"],
    )
    before = listing(tmp_path)
    found = validate_inputs(spec)
    assert listing(tmp_path) == before  # headers only: not even a .aux.xml
    (scene,) = found.scenes
    assert isinstance(scene, SceneHeader)
    assert (scene.id, scene.band_names) == ("khumbu", [*RGB, "nir"])
    assert (scene.grid.width, scene.grid.height, scene.grid.count) == (80, 60, 3)
    assert scene.crs.to_epsg() == 32645
    assert scene.grid.transform == (30.0, 0.0, X0, 0.0, -30.0, Y0)
    assert [f.header.dtypes for f in scene.files] == [("uint8",) * 3, ("uint8",)]
    assert [f.coverage for f in scene.files] == [1.0, pytest.approx(0.75)]
    assert found.dem_coverage == {"khumbu": pytest.approx(0.5)}
    assert found.labels[0]["class_counts"] == {"glacier": 1}


def bad_case(case: str, tmp_path: Path) -> list[tuple[Path, list[str]]]:
    """One scene's band files with one problem."""
    files = good_scene(tmp_path)
    if case == "missing":
        return [(tmp_path / "missing.tif", RGB)]
    if case == "unreadable":
        broken = tmp_path / "broken.tif"
        broken.write_bytes(b"not a tiff at all")
        return [(broken, RGB)]
    if case == "no_crs":
        return [(write_raster(tmp_path / "nocrs.tif", count=3, crs=None), RGB)]
    if case == "rotated":
        rotated = Affine(30, 0, X0, 1.5, -30, Y0)
        return [(write_raster(tmp_path / "rot.tif", count=3, transform=rotated), RGB)]
    if case == "band_count":
        return [(files[0][0], ["red", "green"])]
    if case == "dtype":
        return [(write_raster(tmp_path / "cplx.tif", count=3, dtype="complex64"), RGB)]
    if case == "tiny":
        return [(write_raster(tmp_path / "one.tif", 1, 1, count=3), RGB)]
    if case == "no_overlap":
        far = write_raster(tmp_path / "far.tif", transform=grid(col_off=80))  # touches, no overlap
        return [files[0], (far, ["nir"])]
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        (
            "missing",
            GlacierFileNotFoundError,
            r"^scene 'khumbu' band file not found: .*missing\.tif$",
        ),
        (
            "unreadable",
            GlacierFileError,
            r"^scene 'khumbu' band file .*broken\.tif cannot be read as a raster \(.*\); "
            "check that it is a complete GeoTIFF",
        ),
        (
            "no_crs",
            GlacierFileError,
            r"^scene 'khumbu' band file .*nocrs\.tif has no CRS, so it cannot be placed on a "
            r"map; assign the right one, e\.g\. gdal_edit\.py -a_srs",
        ),
        (
            "rotated",
            GlacierFileError,
            r"rot\.tif has a rotated or skewed geotransform \(transform\.b=0\.0, "
            r"transform\.d=1\.5\), which is not supported; make it north-up first, e\.g\. gdalwarp",
        ),
        (
            "band_count",
            GlacierFileError,
            r"rgb\.tif has 3 band\(s\) but the data config names 2: \['red', 'green'\]; "
            "give one name per band",
        ),
        (
            "dtype",
            GlacierFileError,
            r"cplx\.tif has band data type\(s\) \['complex64'\]; supported: "
            ".*gdal_translate -ot Float32",
        ),
        ("tiny", GlacierFileError, r"one\.tif is 1×1 px; a scene needs at least 2×2 pixels"),
        (
            "no_overlap",
            GlacierFileError,
            r"far\.tif does not overlap the scene grid set by .*rgb\.tif",
        ),
    ],
)
def test_bad_band_files_are_refused_with_one_line_naming_the_file(
    tmp_path: Path, labels: Path, case: str, error: type[Exception], message: str
) -> None:
    spec = spec_for([("khumbu", bad_case(case, tmp_path))], labels)
    before = listing(tmp_path)
    with pytest.raises(error, match=message) as raised:
        validate_scenes(spec)
    assert isinstance(raised.value, GlacierInputError)
    assert "\n" not in str(raised.value)
    assert listing(tmp_path) == before


def test_scenes_with_different_band_layouts_are_refused(tmp_path: Path, labels: Path) -> None:
    first = good_scene(tmp_path)
    other = write_raster(tmp_path / "other.tif", count=4)
    spec = spec_for([("a", first), ("b", [(other, ["red", "green", "nir", "blue"])])], labels)
    with pytest.raises(GlacierInputError) as error:
        validate_scenes(spec)
    assert str(error.value) == (
        "data.scenes: scene 'b' has bands ['red', 'green', 'nir', 'blue'] but scene 'a' has "
        "['red', 'green', 'blue', 'nir']; every scene needs the same bands in the same order "
        "(they become the same channels)"
    )


def test_region_without_crs_is_refused_naming_it(tmp_path: Path, labels: Path) -> None:
    # a shapefile without its .prj has no CRS
    shp = write_polygons(tmp_path / "region.shp", crs=None)
    spec = spec_for([("khumbu", good_scene(tmp_path))], labels, region=str(shp))
    with pytest.raises(GlacierFileError) as error:
        validate_inputs(spec)
    assert str(error.value).startswith(
        f"region polygon file (data.region) {shp} has no CRS, so its polygons cannot be placed; "
        "assign the right one (for a .shp, add its .prj)"
    )


def test_region_far_from_a_scene_is_refused(tmp_path: Path, labels: Path) -> None:
    far = write_polygons(tmp_path / "far.gpkg", bounds=(0, 0, 1000, 1000))
    spec = spec_for([("khumbu", good_scene(tmp_path))], labels, region=str(far))
    with pytest.raises(
        GlacierFileError, match=r"far\.gpkg does not overlap scene 'khumbu'.*data\.region=null"
    ):
        validate_inputs(spec)


def test_dem_without_crs_or_elsewhere_is_refused(tmp_path: Path, labels: Path) -> None:
    files = good_scene(tmp_path)
    for dem, message in [
        (
            write_raster(tmp_path / "dem0.tif", crs=None),
            r"DEM \(data\.dem\) .*dem0\.tif has no CRS",
        ),
        (
            write_raster(tmp_path / "dem1.tif", transform=grid(0, 500)),
            r"DEM \(data\.dem\) .*dem1\.tif does not overlap scene 'khumbu'",
        ),
    ]:
        spec = spec_for([("khumbu", files)], labels, dem=str(dem), derived=["elevation"])
        with pytest.raises(GlacierFileError, match=message):
            validate_inputs(spec)


def labelled(tmp_path: Path, labels: Path, **entry: object) -> object:
    spec = spec_for([("khumbu", good_scene(tmp_path))], labels)
    spec.labels[0] = type(spec.labels[0])(path=labels, **entry)  # type: ignore[arg-type]
    return spec


def test_label_file_problems_are_named(tmp_path: Path, labels: Path) -> None:
    from glacier.data.spec import DateFilter

    spec = labelled(tmp_path, labels, class_column="kinds", class_values={"Clean Ice": "glacier"})
    with pytest.raises(
        GlacierInputError,
        match=r"labels\.gpkg has no class column 'kinds' \(data\.labels\[0\]\.class_column\); "
        r"columns: \['kind', 'year'\]",
    ):
        validate_inputs(spec)  # type: ignore[arg-type]
    spec = labelled(tmp_path, labels, class_column="kind", class_values={"Clean ice": "glacier"})
    with pytest.raises(GlacierInputError) as error:
        validate_inputs(spec)  # type: ignore[arg-type]
    assert str(error.value) == (
        f"class 'glacier' has no polygons in ['{labels}']; check data.labels class_name / "
        "class_values (class column values found: ['Clean Ice'])"
    )
    spec = labelled(tmp_path, labels, class_name="glacier")
    spec.date_filter = DateFilter(column="date", year=2000)  # type: ignore[attr-defined]
    with pytest.raises(
        GlacierInputError,
        match=r"labels\.gpkg has no date column 'date' \(data\.date_filter\.column\)",
    ):
        validate_inputs(spec)  # type: ignore[arg-type]


def test_label_file_without_crs_or_elsewhere_is_refused(tmp_path: Path) -> None:
    nocrs = write_polygons(tmp_path / "nocrs.shp", crs=None)
    spec = spec_for([("khumbu", good_scene(tmp_path))], nocrs)
    with pytest.raises(
        GlacierFileError, match=r"^outline file \(data\.labels\[0\]\) .*nocrs\.shp has no CRS"
    ):
        validate_inputs(spec)
    far = write_polygons(tmp_path / "far.gpkg", bounds=(0, 0, 1000, 1000))
    spec = spec_for([("khumbu", good_scene(tmp_path))], far)
    with pytest.raises(
        GlacierInputError, match=r"no outline polygon of \[.*far\.gpkg'\] overlaps scene 'khumbu'"
    ):
        validate_inputs(spec)


def fingerprint_of(files: list[tuple[Path, list[str]]], labels: Path, **kw: bool) -> dict:
    header = read_scene_header(spec_for([("khumbu", files)], labels).scenes[0])
    return scene_input_fingerprint(header, **kw)


def test_fingerprint_changes_with_band_names_and_files(tmp_path: Path, labels: Path) -> None:
    files = good_scene(tmp_path)
    first = fingerprint_of(files, labels)
    hashed = fingerprint_of(files, labels, content_hash=True)
    json.dumps(first)  # plain JSON
    assert first["band_names"] == [*RGB, "nir"]
    keys = {"path", "size", "mtime_ns", "crs", "transform", "width", "height", "dtypes", "bands"}
    assert keys <= set(first["files"][0])
    assert fingerprint_of(files, labels) == first
    renamed = [(files[0][0], ["blue", "green", "red"]), files[1]]
    assert fingerprint_of(renamed, labels)["band_names"] == ["blue", "green", "red", "nir"]
    assert fingerprint_of(renamed, labels) != first
    assert fingerprint_of(files[::-1], labels) != first
    stat = files[0][0].stat()
    os.utime(files[0][0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert fingerprint_of(files, labels) != first
    assert len(hashed["files"][0]["sha256"]) == 64 and "mtime_ns" not in hashed["files"][0]
    assert fingerprint_of(files, labels, content_hash=True) == hashed  # same bytes, new mtime


@pytest.mark.parametrize(
    "overrides",
    [
        ["data=everest", "data.date_filter={column: BgnDate, year: 2000, tolerance: 2}"],
        [
            "data=synthetic",
            "data.derived=[ndvi, ndsi, elevation, slope]",
            "~data.channel_sets",
            "data.date_filter={column: date, year: 2000, tolerance: 1}",
            "data.region=${paths.raw_dir}/synthetic/region.gpkg",
        ],
    ],
)
def test_shipped_data_configs_pass(compose_in: object, overrides: list[str]) -> None:
    from hydra.utils import instantiate

    cfg = compose_in("preprocess", overrides)  # type: ignore[operator]
    spec = instantiate(cfg.data, _convert_="all")
    found = validate_inputs(spec)
    assert [f.coverage for s in found.scenes for f in s.files] == [1.0] * len(
        spec.scenes[0].sources
    )
    assert all(count > 0 for item in found.labels for count in item["class_counts"].values())
    assert all(item["undated"] == 0 for item in found.labels)
    assert all(value == pytest.approx(1.0) for value in found.dem_coverage.values())


def test_point_layer_is_refused_as_outlines(tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    points = tmp_path / "points.gpkg"
    gpd.GeoDataFrame(geometry=[shapely.Point(X0, Y0)], crs="EPSG:32645").to_file(points)
    spec = spec_for([("khumbu", good_scene(tmp_path))], points)
    with pytest.raises(GlacierFileError) as error:
        validate_inputs(spec)
    assert str(error.value) == (
        f"outline file (data.labels[0]) {points} holds Point geometries; it needs polygons"
    )
