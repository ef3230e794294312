"""Prediction records: one typed record, written and read back; records of earlier code load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glacier.inference.products import (
    OUTPUT_KEYS,
    PredictionRecord,
    finished,
    read_record,
    read_records,
    write_record,
)

# ``khumbu_prediction.json`` as `glacier predict` wrote it before records were typed (main
# 2274cd6: a dict with these keys, sorted, indented by 2); ``{out}`` stands for its folder.
WRITTEN_BY_2274CD6 = """{
  "checkpoint_sha256": "32fa6efc280d1535bdc1027cd2e1e1c8f00cab6bcfe64e144553a8fabe00b402",
  "class_names": [
    "clean_ice",
    "debris"
  ],
  "classes": "{out}/khumbu_classes.tif",
  "fingerprint": "20e32c9b5b6335fc",
  "measures": "{out}/khumbu_uncertainty_measures.tif",
  "metrics": {
    "classes": [
      "background",
      "clean_ice",
      "debris"
    ],
    "metrics": {
      "iou_mean": 0.5
    },
    "uncertainty": {
      "pixels": 4
    }
  },
  "metrics_json": "{out}/khumbu_metrics.json",
  "overlay": "{out}/khumbu_overlay.png",
  "passes": "{out}/khumbu_passes.tif",
  "per_glacier": "{out}/khumbu_per_glacier.gpkg",
  "per_glacier_csv": "{out}/khumbu_per_glacier.csv",
  "per_glacier_sums": "{out}/khumbu_per_glacier.npz",
  "polygons": "{out}/khumbu_glaciers.gpkg",
  "probs": "{out}/khumbu_probs.tif",
  "scene": "khumbu",
  "stac": "{out}/khumbu.stac.json",
  "uncertainty": "{out}/khumbu_uncertainty.tif",
  "uncertainty_bands": [
    "one_minus_max"
  ],
  "uncertainty_figure": "{out}/khumbu_uncertainty.png"
}
"""
# a record of a scene the reference does not cover, from before records named the checkpoint
WITHOUT_REFERENCE_BEFORE_CHECKPOINTS = """{
  "classes": "{out}/lhotse_classes.tif",
  "no_reference": "the reference outlines do not reach it",
  "overlay": "{out}/lhotse_overlay.png",
  "polygons": "{out}/lhotse_glaciers.gpkg",
  "probs": "{out}/lhotse_probs.tif",
  "scene": "lhotse",
  "stac": "{out}/lhotse.stac.json"
}
"""


def old_record(folder: Path, text: str, scene: str) -> Path:
    """Write ``text`` (its folder filled in) as ``<scene>_prediction.json`` with its outputs."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{scene}_prediction.json"
    path.write_text(text.replace("{out}", str(folder)))
    for key in OUTPUT_KEYS:
        name = json.loads(path.read_text()).get(key)
        if name:
            Path(name).write_bytes(b"x")
    return path


def test_a_record_written_before_records_were_typed_loads_and_is_rewritten_byte_for_byte(
    tmp_path: Path,
) -> None:
    out = tmp_path / "maps"
    path = old_record(out, WRITTEN_BY_2274CD6, "khumbu")
    (record,) = read_records(out)
    assert record.scene == "khumbu" and record.classes == out / "khumbu_classes.tif"
    assert record.per_glacier_sums == out / "khumbu_per_glacier.npz"
    assert record.class_names == ("clean_ice", "debris")
    assert record.uncertainty_bands == ("one_minus_max",)
    assert record.metrics is not None and record.metrics["metrics"]["iou_mean"] == 0.5
    assert record.fingerprint == "20e32c9b5b6335fc" and not record.skipped
    assert set(record.outputs) == set(OUTPUT_KEYS)
    again = write_record(tmp_path / "again.json", record)
    assert again.read_text() == path.read_text()  # written as the old code wrote it
    assert finished(out, "khumbu", "20e32c9b5b6335fc") == record
    assert finished(out, "khumbu", "another key") is None  # other settings: not done
    (out / "khumbu_passes.tif").unlink()
    assert finished(out, "khumbu", "20e32c9b5b6335fc") is None  # a lost output: not done


def test_an_older_record_without_reference_or_checkpoint_takes_the_defaults(
    tmp_path: Path,
) -> None:
    out = tmp_path / "maps"
    old_record(out, WITHOUT_REFERENCE_BEFORE_CHECKPOINTS, "lhotse")
    old_record(out, WRITTEN_BY_2274CD6, "khumbu")
    khumbu, lhotse = read_records(out)  # sorted by scene
    assert khumbu.scene == "khumbu"
    assert lhotse.no_reference == "the reference outlines do not reach it"
    assert lhotse.metrics is None and lhotse.metrics_json is None and lhotse.uncertainty is None
    assert (lhotse.fingerprint, lhotse.checkpoint_sha256, lhotse.class_names) == ("", "", ())
    assert finished(out, "lhotse", "") == lhotse


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"classes": "a.tif"}'])
def test_what_is_not_a_record_is_not_read_as_one(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken_prediction.json"
    path.write_text(text)
    assert read_record(path) is None
    assert read_records(tmp_path) == []
    assert finished(tmp_path, "broken", "") is None


def test_a_staged_record_names_its_outputs_where_they_are_published(tmp_path: Path) -> None:
    staging, out = tmp_path / "maps" / ".staging" / "khumbu.0a1b", tmp_path / "maps"
    record = PredictionRecord(
        scene="khumbu",
        classes=staging / "khumbu_classes.tif",
        probs=staging / "khumbu_probs.tif",
        stac=tmp_path / "elsewhere.json",  # not in the staging folder: left as it is
        no_reference="outside",
    )
    moved = record.moved(staging, out)
    assert moved.classes == out / "khumbu_classes.tif" and moved.probs == out / "khumbu_probs.tif"
    assert moved.stac == tmp_path / "elsewhere.json" and moved.no_reference == "outside"
    assert PredictionRecord.from_json(moved.to_json()) == moved
