"""The prediction benchmark on a small generated scene: rows well formed, ratios consistent."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.run import prediction_rows

pytestmark = pytest.mark.slow


def test_prediction_rows_compare_each_figure_with_its_limit(tmp_path: Path) -> None:
    rows = prediction_rows(tmp_path, size=600, bands=3, repeats=1)
    assert [row["name"] for row in rows] == [
        "predict throughput vs pure forward (deterministic)",
        "predict memory, scene size / peak RSS (deterministic)",
        "predict throughput vs pure forward (mc_samples=2)",
        "predict memory, scene size / peak RSS (mc_samples=2)",
    ]
    for row in rows:
        assert row["value"] > 0 and row["limit"] > 0
        assert row["ratio"] == pytest.approx(row["value"] / row["limit"], rel=1e-2, abs=1e-3)
        assert row["met"] == (row["ratio"] >= row["target"])
    scene_mb = 600 * 600 * 3 * 4 / 1e6
    assert rows[1]["value"] == pytest.approx(scene_mb, rel=1e-3)
    # MC dropout runs two passes: its forward limit is about half the deterministic one
    assert rows[2]["limit"] < 0.8 * rows[0]["limit"]
