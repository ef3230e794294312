"""Facts with one home: the homes agree with every place that still spells the fact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from glacier.data.contract import (
    DEM_CHANNELS,
    DERIVED,
    INDEX_BANDS,
    DatasetInfo,
    NodataRule,
    derived_channel,
)
from glacier.data.preprocess import stage_payload
from glacier.data.preprocess.staging import READY_FILE, ScenePayload, mark_ready
from glacier.data.spec.data_spec import DERIVED_CHANNELS
from glacier.inference import output_names
from glacier.inference.engine import PredictionOutputs
from glacier.inference.products import PredictionRecord, read_records, write_record
from glacier.inference.products.records import record_path
from glacier.models.padding import padded_forward


def test_the_engine_names_its_rasters_as_the_output_names_say(tmp_path: Path) -> None:
    outputs = PredictionOutputs.at(tmp_path / "khumbu", True, True, passes=3)
    expected = {
        "classes": output_names.CLASSES,
        "probs": output_names.PROBS,
        "uncertainty": output_names.UNCERTAINTY,
        "measures": output_names.MEASURES,
        "passes": output_names.PASSES,
    }
    for key, suffix in expected.items():
        assert getattr(outputs, key) == tmp_path / f"khumbu{suffix}", key


def test_a_record_is_named_and_found_by_the_record_suffix(tmp_path: Path) -> None:
    path = write_record(record_path(tmp_path, "khumbu"), PredictionRecord("khumbu", Path("k")))
    assert path == tmp_path / "khumbu_prediction.json"
    (tmp_path / "other.json").write_text('{"scene": "other"}')
    assert [r.scene for r in read_records(tmp_path)] == ["khumbu"]


def test_padding_reaches_the_multiple_with_zeros_and_crops_back() -> None:
    seen: list[tuple[int, ...]] = []

    def run(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape))
        return x * 2

    x = torch.arange(2 * 3 * 37 * 50, dtype=torch.float32).reshape(2, 3, 37, 50) + 1
    out = padded_forward(run, x, 16)
    assert seen == [(2, 3, 48, 64)]
    assert torch.equal(out, x * 2)
    assert padded_forward(lambda p: p.sum(dim=(-2, -1), keepdim=True).expand_as(p), x, 16).equal(
        x.sum(dim=(-2, -1), keepdim=True).expand_as(x)
    )


def test_the_all_zero_rule_is_one_rule_for_arrays_and_tensors() -> None:
    a = np.array([[[0, 0], [0, 5]], [[0, 0], [np.nan, 0]]], dtype=np.float32)  # (2, 2, 2)
    b = np.array([[[0], [0]], [[3], [0]]], dtype=np.uint8)
    expected = np.array([[True, False], [False, False]])
    assert np.array_equal(NodataRule.zero_pixels([a, b]), expected)
    tensors = [torch.from_numpy(a), torch.from_numpy(b)]
    assert np.array_equal(NodataRule.zero_pixels(tensors).numpy(), expected)
    channels_first = np.moveaxis(a, -1, 0)
    alone = np.array([[True, False], [True, False]])  # b's 3 no longer keeps (1, 0)
    assert np.array_equal(NodataRule.zero_pixels([channels_first], axis=0), alone)


def test_every_derived_channel_is_declared_once_in_the_registry() -> None:
    assert set(INDEX_BANDS) | set(DEM_CHANNELS) == set(DERIVED)
    assert tuple(DERIVED) == DERIVED_CHANNELS
    bands = ["B1", "B2", "B3", "B4", "B5"]
    roles = {"blue": "B1", "green": "B2", "red": "B3", "nir": "B4", "swir1": "B5"}
    for name, entry in DERIVED.items():
        channel = derived_channel(name, bands, roles)
        assert channel.dtype == entry.dtype, name
        assert channel.kind == ("index" if entry.roles else "dem"), name
    assert derived_channel("ndsi", bands, roles).formula == "(B2-B5)/(B2+B5)"


def test_dataset_info_reads_a_dataset_json_from_before_its_keys() -> None:
    old = DatasetInfo.from_dict({"storage": "scenes"})  # no counts, folds, generation
    assert old.storage == "scenes" and not old.in_release and old.folds is None
    assert old.generation is None and old.to_dict() == {"counts": {}, "storage": "scenes"}
    release = DatasetInfo.from_dict({"storage": "release", "root": "/data/glacier_data"})
    assert release.in_release and release.release_root == Path("/data/glacier_data")


def test_a_scene_payload_round_trips_through_its_stage_record(tmp_path: Path) -> None:
    payload = ScenePayload({"id": "s", "mask": "masks/mask_s.npy"}, [{"slice": 0}], "moments")
    mark_ready(tmp_path, "key", payload)
    assert stage_payload(tmp_path.parent, "nothing", "key") is None
    record = json.loads((tmp_path / READY_FILE).read_text())
    assert record["fingerprint"] == "key"
    assert ScenePayload.from_dict(record["payload"]) == payload
