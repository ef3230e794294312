"""Uncertainty maps of full-scene prediction: what the bands hold, how they are scored."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from scene_files import write_scene
from test_cog_stac import predict

from glacier.inference.evaluation import evaluate_uncertainty
from glacier.models import TieGroups
from glacier.models.uncertainty_metrics import aurc, auroc, calibration, error_by_decile

MEASURES = ["one_minus_max", "entropy", "mutual_information", "spread"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = write_scene(tmp_path_factory.mktemp("scene") / "scene.tif", 300, 200)
    with rasterio.open(path, "r+") as dst:
        data = dst.read()
        data[:, :20, :30] = np.nan  # a nodata corner
        dst.write(data)
    return path


def read(path: Path | None) -> np.ndarray:
    assert path is not None
    with rasterio.open(path) as src:
        return src.read()


def test_the_measures_file_holds_every_measure_named_and_described(
    tmp_path: Path, scene: Path
) -> None:
    outputs = predict(
        scene,
        tmp_path / "s",
        mc_samples=3,
        probabilities="float32",
        temperature=1.5,
        uncertainty=("entropy", "spread"),
        score_measures=True,
    )
    assert outputs.uncertainty is not None and outputs.measures is not None
    with rasterio.open(outputs.measures) as src:
        assert list(src.descriptions) == [*MEASURES, "confidence_uncalibrated"]
        tags = src.tags()
        assert (tags["views"], tags["mc_samples"], tags["temperature"]) == ("1", "3", "1.5")
        assert "disagreement" in src.tags(3)["description"]
        measures = src.read()
    with rasterio.open(outputs.uncertainty) as src:
        assert list(src.descriptions) == ["entropy", "spread"]
        written = src.read()
    probs = read(outputs.probs)
    valid = np.isfinite(probs).all(axis=0)
    assert (np.isnan(measures[:, ~valid])).all() and np.isfinite(measures[:, valid]).all()
    # the bands are what their names say, from the mean probabilities written beside them
    np.testing.assert_allclose(measures[0][valid], 1 - probs.max(axis=0)[valid], atol=1e-6)
    entropy = -(probs * np.log(np.clip(probs, 1e-30, 1))).sum(axis=0)
    np.testing.assert_allclose(measures[1][valid], entropy[valid], atol=1e-5)
    assert (measures[2][valid] >= 0).all() and (
        measures[2][valid] <= measures[1][valid] + 1e-6
    ).all()
    np.testing.assert_array_equal(written[0], measures[1])
    np.testing.assert_array_equal(written[1], measures[3])
    # a temperature > 1 makes the map less confident than without it
    assert (measures[4][valid] >= 1 - measures[0][valid] - 1e-6).mean() > 0.99


def test_maps_scored_block_by_block_equal_the_exact_metrics(tmp_path: Path, scene: Path) -> None:
    outputs = predict(scene, tmp_path / "s", mc_samples=3, score_measures=True)
    assert outputs.measures is not None
    classes = read(outputs.classes)[0]
    rng = np.random.default_rng(0)
    truth = np.where(rng.random(classes.shape) < 0.7, classes, (classes + 1) % 3).astype(np.uint8)
    truth[150:, :] = 255  # a region left out (as outside the test region)
    truth[classes == 255] = 255
    result = evaluate_uncertainty(outputs.measures, outputs.classes, truth)
    measures = read(outputs.measures)
    scored = truth != 255
    wrong = (classes != truth)[scored]
    assert result.pixels == scored.sum() and result.errors == wrong.sum()
    assert list(result.measures) == MEASURES and result.uncalibrated is None
    for index, name in enumerate(MEASURES):
        exact = TieGroups.of(measures[index][scored], wrong)
        got = result.measures[name]
        assert got.auroc == pytest.approx(auroc(exact), abs=2e-3)
        assert got.aurc == pytest.approx(aurc(exact), abs=2e-3)
        assert got.error_by_decile == pytest.approx(error_by_decile(exact), abs=0.02)
    expected = calibration(1 - measures[0][scored].astype(np.float64), wrong)
    assert result.calibration.ece == pytest.approx(expected.ece, abs=1e-9)
    assert result.passes.mc_samples == 3 and math.isclose(result.passes.temperature, 1.0)


def test_class_maps_do_not_depend_on_the_uncertainty_written(tmp_path: Path, scene: Path) -> None:
    plain = predict(scene, tmp_path / "plain", mc_samples=2, uncertainty=())
    every = predict(
        scene,
        tmp_path / "every",
        mc_samples=2,
        uncertainty=("spread", "mutual_information"),
        score_measures=True,
    )
    assert plain.uncertainty is None and plain.measures is None
    np.testing.assert_array_equal(read(plain.classes), read(every.classes))
    np.testing.assert_array_equal(read(plain.probs), read(every.probs))


def test_a_temperature_keeps_a_single_pass_class_map(tmp_path: Path, scene: Path) -> None:
    plain = predict(scene, tmp_path / "plain")
    cooled = predict(scene, tmp_path / "cooled", temperature=3.0, uncertainty=("one_minus_max",))
    np.testing.assert_array_equal(read(plain.classes), read(cooled.classes))
    assert not np.array_equal(read(plain.probs), read(cooled.probs))
    assert plain.uncertainty is None and cooled.uncertainty is not None  # asked for: written
