"""The README's demo table is docs/demo_metrics.json (what ``make demo-docs`` recorded)."""

from __future__ import annotations

import json
from pathlib import Path

from glacier.tasks.report_tables import EVALUATIONS, expected_rows, parse_readme_table
from glacier.tasks.report_uncertainty import UNCERTAINTY_REGIONS, uncertainty_readme_tables

ROOT = Path(__file__).resolve().parents[1]


def test_readme_demo_table_matches_docs_demo_metrics() -> None:
    metrics = json.loads((ROOT / "docs" / "demo_metrics.json").read_text())
    readme = parse_readme_table((ROOT / "README.md").read_text())
    expected = expected_rows(metrics)
    assert set(readme) == set(expected), "README demo table rows differ; run make demo-docs"
    for key, values in expected.items():
        assert readme[key] == values, f"README demo table row {key}: {readme[key]} != {values}"


def test_docs_demo_metrics_is_an_honest_record() -> None:
    metrics = json.loads((ROOT / "docs" / "demo_metrics.json").read_text())
    assert set(metrics["evaluations"]) == set(EVALUATIONS)
    assert metrics["training"]["max_time_fired"] is False  # else it did not repeat
    assert metrics["training"]["deterministic"] is True
    assert metrics["evaluations"]["full_scene"]["areas_km2"]["reference"]["glacier"] > 0


def test_readme_uncertainty_tables_match_docs_demo_metrics() -> None:
    metrics = json.loads((ROOT / "docs" / "demo_metrics.json").read_text())
    block = metrics["uncertainty"]
    assert set(block["regions"]) == set(UNCERTAINTY_REGIONS)
    tables = uncertainty_readme_tables(block)
    assert tables in (ROOT / "README.md").read_text(), "README uncertainty tables: make demo-docs"
