"""The model(s) a prediction uses: ``ckpt_path=`` a file, a list of files, or a training folder.

A list, or a folder of runs (a sweep: ``DIR/*/checkpoints/``, e.g. the folds of a
cross-validation; or one run: ``DIR/checkpoints/``), is an ensemble: its members' passes are
averaged (:mod:`glacier.inference.engine`). In a folder, ``checkpoint=best|last`` picks that file
of every run; ``auto`` the choice of the sweep on the mean over its folds
(:func:`glacier.tasks.cv.sweep_policy`), else ``best``. Members must share one contract: the
same classes and input channels (names, formulas), band layout and nodata rule; their
normalization statistics and temperatures may differ (each model applies its own).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from pickle import UnpicklingError
from typing import Any

from glacier.errors import GlacierConfigError, GlacierFileNotFoundError, GlacierInputError
from glacier.models import GlacierSegmenter
from glacier.tasks.cv import POLICIES, fold_runs, sweep_policy

log = logging.getLogger(__name__)
CHOICES = ("auto", *POLICIES)


def load_segmenter(ckpt_path: str | Path) -> GlacierSegmenter:
    """Load a trained segmenter without unpickling arbitrary objects (``weights_only``).

    Args:
        ckpt_path: Checkpoint file.

    Returns:
        The model in eval mode on the CPU.

    Raises:
        GlacierFileNotFoundError: If the file does not exist.
        GlacierInputError: If it is not a glacier checkpoint or does not fit its model.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise GlacierFileNotFoundError(f"checkpoint not found: {path}")
    try:
        module = GlacierSegmenter.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except (RuntimeError, KeyError, TypeError, EOFError, ValueError, UnpicklingError) as error:
        raise GlacierInputError(f"cannot load checkpoint {path}: {error}") from error
    return module.eval()


def folder_checkpoints(folder: Path, policy: str) -> list[Path]:
    """The checkpoints of a training folder: one run's, or every run's of a sweep.

    Raises:
        GlacierInputError: If the folder holds no run with checkpoints.
    """
    if (folder / "checkpoints").is_dir():
        runs = [folder]
    else:
        runs = sorted(p for p in folder.iterdir() if (p / "checkpoints").is_dir())
        ordered = fold_runs(folder)  # runs with metrics.json, by fold
        if len(ordered) == len(runs):
            runs = [run.path for run in ordered]
    if not runs:
        raise GlacierInputError(
            f"ckpt_path={folder}: a folder, but no checkpoints/ in it or in its subfolders"
        )
    chosen = sweep_policy(folder, fold_runs(folder)) if policy == "auto" else policy
    log.info("ensemble of %d run(s) in %s: their %s.ckpt", len(runs), folder, chosen)
    paths = [run / "checkpoints" / f"{chosen}.ckpt" for run in runs]
    for path in paths:
        if not path.is_file():
            raise GlacierFileNotFoundError(f"checkpoint not found: {path} (checkpoint={chosen})")
    return paths


def checkpoint_files(ckpt_path: Any, policy: str = "auto") -> list[Path]:
    """The checkpoint files ``ckpt_path`` names (a file, a list, or a folder; see the module).

    Raises:
        GlacierConfigError: For an unknown ``checkpoint`` or an empty list.
    """
    if str(policy) not in CHOICES:
        raise GlacierConfigError(f"checkpoint={policy!r}: one of {list(CHOICES)}")
    if isinstance(ckpt_path, str | Path):
        path = Path(ckpt_path)
        return folder_checkpoints(path, str(policy)) if path.is_dir() else [path]
    paths = [Path(str(p)) for p in ckpt_path]
    if not paths:
        raise GlacierConfigError("ckpt_path=[]: name at least one checkpoint")
    return paths


def member_fields(module: GlacierSegmenter) -> dict[str, Any]:
    """What members of one ensemble must share (their contract, as far as prediction uses it)."""
    contract = module.contract
    channels = [contract.channel(name) for name in module.channel_names]
    return {
        "classes": module.class_names,
        "channels": module.channel_names,
        "channel formulas": [(c.name, c.kind, c.formula) for c in channels],
        "band layout": [list(files) for files in contract.band_layout],
        "band roles": dict(contract.band_roles),
        "nodata rule": (contract.nodata.value, contract.nodata.all_zero),
    }


def check_members(members: Sequence[GlacierSegmenter], paths: Sequence[Path]) -> None:
    """Refuse an ensemble whose members do not share one contract, in one line.

    Raises:
        GlacierInputError: Naming the first differing member, the field and both values.
    """
    reference = member_fields(members[0])
    for number, member in enumerate(members[1:], start=1):
        for field, value in member_fields(member).items():
            if value != reference[field]:
                raise GlacierInputError(
                    f"ensemble member {number} ({paths[number]}) differs from member 0 "
                    f"({paths[0]}) in {field}: {value} vs {reference[field]}"
                )


def load_members(ckpt_path: Any, policy: str = "auto") -> tuple[list[GlacierSegmenter], list[Path]]:
    """Load the model(s) of ``ckpt_path`` and check that they form one ensemble.

    Returns:
        The models (eval mode, CPU) and their files, in the same order.
    """
    paths = checkpoint_files(ckpt_path, policy)
    members = [load_segmenter(path) for path in paths]
    check_members(members, paths)
    return members, paths
