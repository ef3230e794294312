"""The end of a cross-validation sweep: policy, folds' mean ± std, the ensembles' held-out test.

At the end of ``glacier train -m … 'split.fold=0,1,2,3,4'`` (a Hydra callback,
:class:`CrossValidationSummary`) the sweep folder gets ``cv.json``:

* the checkpoint policy chosen on the folds' mean dev curve (``tasks.cv.choose_policy``);
* per policy, the mean ± std over the folds of the single models' held-out test scores;
* per policy, the test step of the ensemble of the folds' checkpoints on the same test split
  (every member's TTA/MC passes, its own temperature; :func:`glacier.models.ensemble_test_step`);
* calibration across folds: every non-test slice is some fold's dev, so the members' dev logits
  are out-of-fold predictions of the whole non-test area; one temperature fitted on all of them
  is compared, leave one fold out, with the one-strip temperatures and with none, and the
  ensemble's test step is repeated with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from pytorch_lightning.utilities import move_data_to_device
from torch import Tensor

from glacier.data.loading import GlacierDataModule
from glacier.inference.engine import resolve_device
from glacier.models import (
    GlacierSegmenter,
    TemperatureFit,
    collect_logits,
    ece_at,
    ensemble_test_step,
    fit_temperature,
)
from glacier.tasks.cv import (
    POLICIES,
    SUMMARY_FILE,
    FoldRun,
    choose_calibration,
    choose_policy,
    fold_runs,
    fold_statistics,
    is_cross_validation,
    uncertainty_statistics,
)
from glacier.tasks.members import check_members, load_segmenter
from glacier.utils.io import write_json_atomic

log = logging.getLogger(__name__)
FORMAT = 1


def fold_data(run: FoldRun, member: GlacierSegmenter, fold: int | None) -> GlacierDataModule:
    """The run's processed dataset with the member's channels and classes, one fold resolved."""
    data = run.metrics["data"]
    datamodule = GlacierDataModule(
        data["processed_dir"],
        classes=member.class_names,
        channels=member.channel_names,
        batch_size=int(data.get("batch_size") or 8),
        num_workers=0,
        pin_memory=False,
        fold=fold,
    )
    datamodule.setup("test")
    return datamodule


def model_inputs(
    datamodule: GlacierDataModule, split: str, device: torch.device
) -> Iterator[dict[str, Tensor]]:
    """The split's batches as model inputs on ``device`` (the loaders' order)."""
    loader = datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader()
    for batch in loader:
        yield datamodule.prepare_batch(move_data_to_device(batch, device), train=False)


def ensemble_test(
    members: list[GlacierSegmenter], datamodule: GlacierDataModule, device: torch.device
) -> dict[str, Any]:
    """The test step of the ensemble on the test split: metrics and uncertainty."""
    result = ensemble_test_step(members, model_inputs(datamodule, "test", device))
    return {"test": result.metrics, "uncertainty": result.uncertainty.to_dict()}


def out_of_fold_logits(
    runs: list[FoldRun], members: list[GlacierSegmenter], device: torch.device
) -> list[tuple[Tensor, Tensor]]:
    """Each member's raw logits and labels on its own fold's dev slices (out-of-fold)."""
    found = []
    for run, member in zip(runs, members, strict=True):
        datamodule = fold_data(run, member, run.fold)
        found.append(collect_logits(member, model_inputs(datamodule, "dev", device)))
    return found


def cross_fitted_calibration(
    logits: list[tuple[Tensor, Tensor]], own: list[float]
) -> dict[str, Any]:
    """One temperature from every fold's out-of-fold dev logits, and how it does on dev.

    Leave one fold out: for each fold, the dev ECE under the temperature fitted on the other
    folds' dev logits (pooled), under each other fold's own one-strip temperature (their mean
    ECE), and without a temperature.

    Args:
        logits: Per fold, (N, K) raw dev logits and (N,) labels.
        own: Per fold, the member's own temperature (fitted on its dev strip).
    """

    def pooled(parts: list[tuple[Tensor, Tensor]]) -> TemperatureFit:
        return fit_temperature(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))

    everything = pooled(logits)
    rows = []
    for i, (values, labels) in enumerate(logits):
        others = [part for j, part in enumerate(logits) if j != i]
        strips = [ece_at(values, labels, t) or 0.0 for j, t in enumerate(own) if j != i]
        rows.append(
            {
                "pooled": ece_at(values, labels, pooled(others).temperature),
                "one_strip": sum(strips) / len(strips),
                "none": ece_at(values, labels, 1.0),
            }
        )
    mean = {key: sum(row[key] or 0.0 for row in rows) / len(rows) for key in rows[0]}
    return {
        "pooled_temperature": everything.temperature,
        "pooled_pixels": everything.pixels,
        "fold_temperatures": own,
        "dev_ece_leave_one_fold_out": {"mean": mean, "folds": rows},
    }


def ensemble_members(runs: list[FoldRun], policy: str, device: torch.device) -> list[Any]:
    """The folds' ``policy`` checkpoints, loaded on ``device`` and checked as one ensemble."""
    paths = [run.checkpoint(policy) for run in runs]
    members = [load_segmenter(path).to(device) for path in paths]
    check_members(members, paths)
    return members


def summarize_sweep(
    folder: Path, test_ensemble: bool = True, write: bool = True
) -> dict[str, Any] | None:
    """Summarize a cross-validation sweep folder into ``cv.json`` (None: not one).

    Args:
        folder: The sweep folder (its runs directly inside).
        test_ensemble: Also run the ensembles' test step and the cross-fitted calibration.
        write: Write ``cv.json`` (else only return the summary).
    """
    runs = fold_runs(folder)
    if not is_cross_validation(runs):
        return None
    choice = choose_policy([run.dev_curve for run in runs])
    tested = [p for p in POLICIES if all(run.test(p) for run in runs)]
    summary: dict[str, Any] = {
        "format": FORMAT,
        "folder": str(folder),
        "runs": [run.path.name for run in runs],
        "folds": [run.fold for run in runs],
        "policy": choice.to_dict(),
        "single": {policy: fold_statistics(runs, policy) for policy in tested},
        "single_uncertainty": {policy: uncertainty_statistics(runs, policy) for policy in tested},
        "ensemble": {},
    }
    if test_ensemble:
        summary["ensemble"], summary["calibration"] = test_ensembles(runs, tested, choice.chosen)
    if write:
        write_json_atomic(folder / SUMMARY_FILE, summary)
    return summary


def test_ensembles(
    runs: list[FoldRun], policies: list[str], chosen: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Each policy's ensemble on the test split; the cross-fitted temperature (chosen policy)."""
    device = resolve_device("auto")
    ensembles: dict[str, Any] = {}
    calibration = None
    for policy in policies:
        members = ensemble_members(runs, policy, device)
        datamodule = fold_data(runs[0], members[0], None)
        ensembles[policy] = {"members": [str(run.checkpoint(policy)) for run in runs]}
        ensembles[policy] |= ensemble_test(members, datamodule, device)
        if policy != chosen:
            continue
        own = [member.temperature_value for member in members]
        calibration = cross_fitted_calibration(out_of_fold_logits(runs, members, device), own)
        candidates = {
            "ensemble_with_pooled_temperature": calibration["pooled_temperature"],
            "ensemble_without_temperature": 1.0,
        }
        for key, temperature in candidates.items():
            for member in members:
                member.get_buffer("temperature").fill_(temperature)
            calibration[key] = ensemble_test(members, datamodule, device)
        choice = choose_calibration(calibration)
        calibration["chosen"] = None if choice is None else choice.chosen  # what predict uses
    return ensembles, calibration


class CrossValidationSummary(Callback):
    """Hydra callback: at the end of a multirun over ``split.fold``, summarize it (``cv.json``).

    Multiruns that are not a cross-validation (each fold once, one dataset) are left alone.

    Args:
        test_ensemble: Also test the ensembles of the folds (loads every checkpoint).
    """

    def __init__(self, test_ensemble: bool = True) -> None:
        self.test_ensemble = test_ensemble

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Summarize the sweep folder and print the summary."""
        from glacier.tasks.report_cv import format_cv_summary

        folder = Path(str(config.hydra.sweep.dir))
        if not folder.is_dir():
            return
        summary = summarize_sweep(folder, self.test_ensemble)
        if summary is not None:
            print(format_cv_summary(summary))
            log.info("cross-validation summary: %s", folder / SUMMARY_FILE)
