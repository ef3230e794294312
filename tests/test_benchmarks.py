"""The benchmark rows on small generated data: well formed, ratios consistent with their sides."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.run import everest_rows, prediction_rows

pytestmark = pytest.mark.slow


def test_prediction_rows_compare_each_figure_with_its_limit(tmp_path: Path) -> None:
    rows = prediction_rows(tmp_path, size=600, bands=3, repeats=1)
    assert [row["name"] for row in rows] == [
        "predict vs model alone (deterministic)",
        "predict memory, scene / peak RSS (deterministic)",
        "predict with COG outputs (overviews) vs model alone (deterministic)",
        "predict vs model alone (mc_samples=2)",
        "predict memory, scene / peak RSS (mc_samples=2)",
    ]
    for row in rows:
        assert row["value"] > 0 and row["limit"] > 0
        assert row["ratio"] == pytest.approx(row["value"] / row["limit"], rel=1e-2, abs=1e-3)
        assert row["met"] == (row["ratio"] >= row["target"])
    scene_mb = 600 * 600 * 3 * 4 / 1e6
    assert rows[1]["value"] == pytest.approx(scene_mb, rel=1e-3)
    # MC dropout runs two passes: its forward limit is about half the deterministic one
    assert rows[3]["limit"] < 0.8 * rows[0]["limit"]


def test_storage_rows_show_pixels_stored_once(tmp_path: Path) -> None:
    rows = everest_rows(tmp_path, tiles=1)
    stored, windows, predecessor = rows[1], rows[2], rows[3]
    assert stored["ratio"] == pytest.approx(1.0) and stored["met"]
    assert windows["met"] and predecessor["ratio"] > 4  # uint8 once vs float32 twice
