"""Outline dates parsed value by value: mixed formats lose nothing, bad values are named."""

from __future__ import annotations

import datetime as dt
import logging
import math
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from raster_inputs import listing, write_polygons

from glacier.data.labels import load_label_sources, parse_years
from glacier.data.labels.dates import MISSING, parse_year
from glacier.data.spec import DataSpec, DateFilter, LabelSource, sample_path
from glacier.errors import GlacierConfigError, GlacierFileError


@pytest.mark.parametrize(
    ("value", "year"),
    [
        (2000, 2000),
        (2000.0, 2000),
        (2000.83, 2000),  # decimal year
        (20001030, 2000),
        (20001030.0, 2000),
        (20039999, 2003),  # RGI: month and day unknown
        ("2000", 2000),
        ("2000.0", 2000),
        (" 20001030 ", 2000),
        ("2000-10-30", 2000),
        ("2000-10-30T12:00:00", 2000),
        ("2000-10-30 12:00", 2000),
        ("2000-10-30T12:00:00+05:45", 2000),
        ("2000/10/30", 2000),
        (dt.date(2000, 10, 30), 2000),
        (pd.Timestamp("2000-10-30"), 2000),
    ],
)
def test_accepted_formats(value: object, year: int) -> None:
    assert parse_year(value) == year


@pytest.mark.parametrize("value", [None, math.nan, "", "  ", -9999999, 0, pd.NaT])
def test_missing_values(value: object) -> None:
    assert parse_year(value) == MISSING


@pytest.mark.parametrize(
    "value", ["30/10/2000", "30102000", "2000-13-01", "2000-02-30", "200", "circa 2000", 10302000]
)
def test_unparseable_values(value: object) -> None:
    assert math.isnan(parse_year(value))


def test_explicit_format_is_tried_first() -> None:
    assert parse_year("30.10.2000", "%d.%m.%Y") == 2000
    assert parse_year("2000-10-30", "%d.%m.%Y") == 2000  # the built-in formats still apply


def test_a_numeric_column_mixing_years_and_yyyymmdd() -> None:
    parsed = parse_years(pd.Series([2000.0, 20001030.0, math.nan, 2010.0]))
    assert parsed.years.tolist()[:2] == [2000.0, 2000.0] and parsed.years.iloc[3] == 2010.0
    assert parsed.missing.tolist() == [False, False, True, False]
    assert not parsed.unparseable.any()


def everest_mixed(tmp_path: Path) -> Path:
    """The Everest outlines with BgnDate rewritten in five formats, row by row."""
    frame = gpd.read_file(sample_path("glacier_outlines.gpkg"))
    writers = [
        lambda d: d[:4],
        lambda d: f"{d[:4]}-{d[4:6]}-{d[6:]}",
        lambda d: d,
        lambda d: f"{d[:4]}/{d[4:6]}/{d[6:]}",
        lambda d: f"{d[:4]}-{d[4:6]}-{d[6:]}T10:30:00",
    ]
    frame["BgnDate"] = [writers[i % 5](d) for i, d in enumerate(frame["BgnDate"])]
    assert frame["BgnDate"].iloc[0] == "2000"  # the first value is a bare year
    path = tmp_path / "everest_mixed.gpkg"
    frame.to_file(path)
    return path


def test_everest_outlines_in_mixed_formats_parse_all_86(tmp_path: Path) -> None:
    frame = gpd.read_file(everest_mixed(tmp_path))
    parsed = parse_years(frame["BgnDate"])
    assert len(frame) == 86
    assert parsed.years.notna().sum() == 86
    original = parse_years(gpd.read_file(sample_path("glacier_outlines.gpkg"))["BgnDate"])
    assert parsed.years.tolist() == original.years.tolist()


def test_everest_mixed_formats_filter_like_the_original(tmp_path: Path) -> None:
    rule = DateFilter(column="BgnDate", year=2000, tolerance=2)
    for path in (sample_path("glacier_outlines.gpkg"), everest_mixed(tmp_path)):
        source = LabelSource(path=path, class_name="glacier")
        outlines = load_label_sources([source], ["glacier"], rule)
        report = outlines.reports["glacier"]
        assert sum(len(f) for f in outlines.frames["glacier"]) == 33
        assert (report.loaded, report.outside_dates, report.undated) == (86, 53, 0)


def dated_polygons(tmp_path: Path, dates: list[object]) -> Path:
    return write_polygons(tmp_path / "dated.gpkg", columns={"date": dates})


def test_unparseable_dates_are_refused_naming_file_column_and_examples(tmp_path: Path) -> None:
    path = dated_polygons(tmp_path, ["2000-10-30", "30/10/2000", "circa 2000", "30/10/2000"])
    before = listing(tmp_path)
    rule = DateFilter(column="date", year=2000)
    with pytest.raises(GlacierFileError) as error:
        load_label_sources([LabelSource(path=path, class_name="glacier")], ["glacier"], rule)
    assert str(error.value) == (
        f"{path}: 3 of 4 values of date column 'date' (data.date_filter.column) match no "
        "accepted date format, e.g. ['30/10/2000', 'circa 2000']; accepted: a year, YYYYMMDD, "
        "YYYY-MM-DD[THH:MM:SS] or YYYY/MM/DD; set data.date_filter.format (strptime, e.g. "
        "'%d.%m.%Y') or fix those values"
    )
    assert listing(tmp_path) == before
    fixed = DateFilter(column="date", year=2000, format="%d/%m/%Y")
    with pytest.raises(GlacierFileError, match="1 of 4 values"):
        load_label_sources([LabelSource(path=path, class_name="glacier")], ["glacier"], fixed)


@pytest.mark.parametrize(("undated", "kept"), [("drop", 2), ("keep", 4)])
def test_undated_polygons_are_counted_logged_and_follow_the_rule(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, undated: str, kept: int
) -> None:
    path = dated_polygons(tmp_path, ["2000", None, "", "2001-05-01", "1990"])
    rule = DateFilter(column="date", year=2000, tolerance=1, undated=undated)
    with caplog.at_level(logging.WARNING):
        outlines = load_label_sources(
            [LabelSource(path=path, class_name="glacier")], ["glacier"], rule
        )
    report = outlines.reports["glacier"]
    assert (report.loaded, report.undated, report.outside_dates) == (5, 2, 1)
    assert sum(len(f) for f in outlines.frames["glacier"]) == kept
    verb = "kept" if undated == "keep" else "dropped"
    assert f"2 of 5 polygon(s) have no date in column 'date'; {verb}" in caplog.text


def test_undated_error_refuses(tmp_path: Path) -> None:
    path = dated_polygons(tmp_path, ["2000", None])
    rule = DateFilter(column="date", year=2000, undated="error")
    with pytest.raises(
        GlacierFileError, match=r"dated\.gpkg: 1 polygon\(s\) of class 'glacier' have no date"
    ):
        load_label_sources([LabelSource(path=path, class_name="glacier")], ["glacier"], rule)


def test_date_filter_config_is_checked() -> None:
    with pytest.raises(
        GlacierConfigError, match=r"data\.date_filter\.undated='maybe': choose one of"
    ):
        DateFilter(column="d", year=2000, undated="maybe")
    with pytest.raises(
        GlacierConfigError, match=r"data\.date_filter\.tolerance=-1: must be an integer >= 0"
    ):
        DateFilter(column="d", year=2000, tolerance=-1)
    with pytest.raises(GlacierConfigError, match=r"data\.date_filter has unknown keys \['yaer'\]"):
        DataSpec(
            name="t",
            classes=["glacier"],
            labels=[],
            scenes=[{"id": "s", "sources": [{"path": "x.tif", "bands": ["a"]}]}],
            date_filter={"column": "d", "yaer": 2000},
        )
