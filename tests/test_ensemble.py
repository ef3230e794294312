"""Ensembles: identical members equal one member exactly, members' passes feed one set of
statistics, contracts are checked in one line, sweep folders give their runs' checkpoints."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from scene_files import write_scene

from glacier.data.contract import IGNORE_INDEX, Channel, ChannelStats, DatasetContract
from glacier.data.raster import SceneReader
from glacier.data.spec import BandSource, SceneSpec
from glacier.errors import GlacierInputError
from glacier.inference.engine import PredictionOutputs, PredictSettings, SceneJob, predict_scenes
from glacier.models import (
    GlacierSegmenter,
    Passes,
    PassStats,
    ensemble_test_step,
    mean_of_members,
)
from glacier.tasks.cv import choose_policy
from glacier.tasks.members import checkpoint_files, load_members

BANDS = ("red", "green", "blue", "nir")


def segmenter(
    seed: int = 0,
    classes: tuple[str, ...] = ("glacier",),
    nir: str | None = None,
    dropout: float = 0.2,
    **extra: Any,
) -> GlacierSegmenter:
    """A small dropout U-Net with the scene's four bands (``nir`` may carry a formula)."""
    channels = tuple(Channel(b, formula=nir if b == "nir" else None) for b in BANDS)
    contract = DatasetContract(
        name="t",
        channels=channels,
        classes=classes,
        stats=ChannelStats(mean=dict.fromkeys(BANDS, 0.3), std=dict.fromkeys(BANDS, 0.2)),
    )
    torch.manual_seed(seed)
    return GlacierSegmenter(
        model={
            "_target_": "glacier.models.unet.DropoutUNet",
            "depth": 2,
            "base_filters": 4,
            "dropout": dropout,
        },
        loss={"_target_": "glacier.models.losses.CrossEntropyLoss"},
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True},
        class_names=list(classes),
        channel_names=list(BANDS),
        data=contract.to_dict(),
        **extra,
    ).eval()


def save(module: GlacierSegmenter, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": "2.5.0",
    }
    torch.save(checkpoint, path)
    return path


def predict(
    scene: Path, out: Path, models: Any, temperatures: tuple[float, ...], **kwargs: Any
) -> PredictionOutputs:
    settings = PredictSettings(
        tile_size=64, overlap=16, temperatures=temperatures, probabilities="float32", **kwargs
    )
    spec = SceneSpec(id="t", sources=(BandSource(path=scene, bands=BANDS),))
    job = SceneJob("t", lambda: SceneReader(spec), list(BANDS), ["glacier"], out)
    return predict_scenes(models, [job], settings)[0]


def read(path: Path | None) -> np.ndarray:
    assert path is not None
    with rasterio.open(path) as src:
        return src.read()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_ensemble_of_identical_members_equals_one_member_exactly(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif", 150, 110)
    member = segmenter(dropout=0.3)
    passes: dict[str, Any] = {"mc_samples": 2, "tta": 2, "score_measures": True}
    one = predict(scene, tmp_path / "one", member, (1.3,), **passes)
    three = [member, copy.deepcopy(member), copy.deepcopy(member)]
    ensemble = predict(scene, tmp_path / "three", three, (1.3,) * 3, **passes)
    assert sha(one.classes) == sha(ensemble.classes) and sha(one.probs) == sha(ensemble.probs)
    np.testing.assert_array_equal(read(one.measures), read(ensemble.measures))  # every measure
    with rasterio.open(ensemble.measures) as src:  # the metadata says which passes
        tags = src.tags()
    assert (tags["members"], tags["passes"], tags["member_temperatures"]) == (
        "3",
        "12",
        "1.3 1.3 1.3",
    )
    stats = PassStats(torch.rand(2, 3, 5, 5, dtype=torch.float32))
    assert torch.equal(mean_of_members([stats, copy.deepcopy(stats)]).probs, stats.probs)


def test_members_passes_feed_one_set_of_statistics(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif", 150, 110)
    a, b = segmenter(seed=0), segmenter(seed=1)
    measures: dict[str, Any] = {"uncertainty": ("mutual_information", "spread")}
    alone = [
        read(predict(scene, tmp_path / n, m, (t,)).probs)
        for n, m, t in (("a", a, 1.0), ("b", b, 2.0))
    ]
    both = predict(scene, tmp_path / "ab", [a, b], (1.0, 2.0), **measures)
    probs = read(both.probs)
    valid = np.isfinite(probs).all(axis=0)
    np.testing.assert_allclose(probs[:, valid], ((alone[0] + alone[1]) / 2)[:, valid], atol=1e-6)
    # two deterministic members are two passes: their disagreement is the uncertainty
    information, spread = read(both.uncertainty)
    gap = np.abs(alone[0][1] - alone[1][1])[valid]
    assert information[valid].max() > 0 and np.corrcoef(spread[valid], gap)[0, 1] > 0.99
    assert (
        Passes.of_members(1, 0, (1.0, 2.0)).count == 2
        and Passes.of_members(1, 0, (1.0, 2.0)).scaled
    )


def test_mismatched_contracts_are_refused_in_one_line(tmp_path: Path) -> None:
    a = save(segmenter(), tmp_path / "a.ckpt")
    members, paths = load_members([str(a), str(save(segmenter(seed=1), tmp_path / "b.ckpt"))])
    assert len(members) == 2 and paths[1].name == "b.ckpt"
    cases = {
        "classes": segmenter(classes=("debris",)),
        "channel formulas": segmenter(nir="(B4)"),
    }
    for field, other in cases.items():
        bad = save(other, tmp_path / f"{field.split()[0]}.ckpt")
        with pytest.raises(GlacierInputError) as error:
            load_members([str(a), str(bad)])
        message = str(error.value)
        assert "\n" not in message
        assert message.startswith(
            f"ensemble member 1 ({bad}) differs from member 0 ({a}) in {field}:"
        )


def test_the_test_step_of_an_ensemble_of_one_is_the_models(tmp_path: Path) -> None:
    module = segmenter(tta=True, dropout=0.2, test_mc_samples=2)
    logged: dict[str, float] = {}
    module.log_dict = lambda values, **_: logged.update(values)  # type: ignore[method-assign]
    module.log = lambda name, value, **_: logged.update({name: float(value)})  # type: ignore[method-assign]
    generator = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(2):
        mask = torch.randint(0, 2, (2, 16, 16), generator=generator)
        mask[:, :2] = IGNORE_INDEX
        batches.append({"image": torch.rand(2, 4, 16, 16, generator=generator), "mask": mask})
    module.on_test_epoch_start()
    with torch.no_grad():
        for index, batch in enumerate(batches):
            module.test_step(batch, index)
    expected = module.epoch_metrics("test")
    module.on_test_epoch_end()
    result = ensemble_test_step([module], batches)
    assert result.metrics == expected
    assert module.test_uncertainty is not None
    assert result.uncertainty.to_dict() == module.test_uncertainty.to_dict()
    twins = ensemble_test_step([module, copy.deepcopy(module)], batches)
    assert twins.metrics == expected and twins.uncertainty.passes.members == 2
    assert twins.uncertainty.passes.count == 2 * 8 * 2
    assert (
        twins.uncertainty.measures["one_minus_max"] == result.uncertainty.measures["one_minus_max"]
    )


def fold_run(folder: Path, fold: int, curve: list[float]) -> None:
    run = folder / str(fold)
    for name in ("best", "last"):
        save(segmenter(seed=fold), run / "checkpoints" / f"{name}.ckpt")
    metrics = {
        "data": {"fold": fold, "folds": 2, "processed_dir": "p"},
        "dev_curve": [[epoch, value] for epoch, value in enumerate(curve)],
    }
    (run / "metrics.json").write_text(json.dumps(metrics))


def test_a_sweep_folder_gives_its_runs_checkpoints_under_the_cv_choice(tmp_path: Path) -> None:
    flat, falling = tmp_path / "flat", tmp_path / "falling"
    for fold, (a, b) in enumerate([(0.70, 0.80), (0.72, 0.79)]):
        fold_run(flat, fold, [0.6, a, b, b])  # trained to the end: the last is the best
        fold_run(falling, fold, [0.6, b, a, a])  # the dev score falls after epoch 1
    assert [p.parts[-3:] for p in checkpoint_files(str(flat))] == [
        ("0", "checkpoints", "last.ckpt"),
        ("1", "checkpoints", "last.ckpt"),
    ]
    assert all(p.name == "best.ckpt" for p in checkpoint_files(str(falling)))
    assert all(p.name == "best.ckpt" for p in checkpoint_files(str(flat), "best"))
    (flat / "cv.json").write_text(json.dumps({"policy": {"chosen": "best"}}))
    assert all(p.name == "best.ckpt" for p in checkpoint_files(str(flat)))  # the sweep's record
    (flat / "1" / "checkpoints" / "last.ckpt").unlink()
    with pytest.raises(GlacierInputError, match=r"1/checkpoints/last\.ckpt"):
        checkpoint_files(str(flat), "last")


def test_the_policy_is_chosen_on_the_mean_curve_with_one_standard_error() -> None:
    def curves(*rows: list[float]) -> list[list[tuple[int, float]]]:
        return [list(enumerate(row)) for row in rows]

    # each fold's own best beats its last, but the mean curve ends within one standard error
    noisy = choose_policy(curves([0.5, 0.80, 0.70, 0.76], [0.5, 0.70, 0.80, 0.75]))
    assert (
        noisy.chosen == "last" and noisy.best_epoch == 3 and noisy.last_mean == pytest.approx(0.755)
    )
    overfit = choose_policy(curves([0.5, 0.80, 0.71], [0.5, 0.81, 0.70], [0.5, 0.79, 0.72]))
    assert (
        overfit.chosen == "best" and overfit.best_epoch == 1 and "more than one" in overfit.reason
    )
    assert choose_policy(curves([0.5, 0.6])).chosen == "best"  # one fold: no standard error


def test_predict_refuses_a_mismatched_ensemble_in_one_line_before_any_write(
    tmp_path: Path,
) -> None:
    from test_cli import glacier

    a = save(segmenter(), tmp_path / "a.ckpt")
    b = save(segmenter(classes=("debris",)), tmp_path / "b.ckpt")
    scene = write_scene(tmp_path / "scene.tif", 80, 60)
    maps = tmp_path / "maps"
    args = [f"ckpt_path=[{a},{b}]", f"input={scene}", f"out_dir={maps}"]
    args.append(f"hydra.run.dir={tmp_path / 'hydra'}")
    done = glacier(["predict", *args], tmp_path)
    assert done.returncode == 2 and not maps.exists()
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [
        f"glacier predict: error: ensemble member 1 ({b}) differs from member 0 ({a}) in "
        "classes: ['debris'] vs ['glacier']"
    ]


def test_a_sweeps_ensemble_takes_the_temperature_its_folds_dev_ece_chose(tmp_path: Path) -> None:
    from glacier.models import store_temperature
    from glacier.tasks.cv import sweep_calibration
    from glacier.tasks.predict_setup import member_temperatures

    sweep = tmp_path / "sweep"
    for fold in (0, 1):
        fold_run(sweep, fold, [0.6, 0.7])
        store_temperature(sweep / str(fold) / "checkpoints" / "last.ckpt", 1.5 + fold)
    members, _ = load_members(str(sweep), "last")
    assert sweep_calibration(sweep) is None  # no cv.json: every member its own
    assert member_temperatures(None, str(sweep), members) == pytest.approx((1.5, 2.5))

    def record(none: float, pooled: float, one_strip: float) -> None:
        mean = {"none": none, "pooled": pooled, "one_strip": one_strip}
        calibration = {"pooled_temperature": 1.8, "dev_ece_leave_one_fold_out": {"mean": mean}}
        (sweep / "cv.json").write_text(json.dumps({"calibration": calibration}))

    record(none=0.05, pooled=0.09, one_strip=0.12)
    assert member_temperatures(None, str(sweep), members) == (1.0, 1.0)
    record(none=0.09, pooled=0.05, one_strip=0.12)
    assert member_temperatures(None, str(sweep), members) == (1.8, 1.8)
    record(none=0.09, pooled=0.12, one_strip=0.05)
    assert member_temperatures(None, str(sweep), members) == pytest.approx((1.5, 2.5))
    assert member_temperatures(1.2, str(sweep), members) == (1.2, 1.2)
    assert member_temperatures(None, str(sweep / "0"), members[:1]) == pytest.approx((1.5,))
