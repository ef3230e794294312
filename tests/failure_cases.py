"""Pieces of the failure tests: the ``glacier`` command, faults, Everest inputs, checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely

from glacier.data.contract import DatasetContract
from glacier.data.spec import sample_path

TESTS = Path(__file__).resolve().parent
RGB = "LE71400412000304SGS00_RGB.TIF"
NIR = "LE71400412000304SGS00_B4_crop.TIF"


def environment(**env: str) -> dict[str, str]:
    """The test's environment for a ``glacier`` process (W&B off, no inherited task)."""
    result = {**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "0", **env}
    result.pop("GLACIER_TASK", None)
    return result


def glacier(
    args: list[str], cwd: Path, fault: list[str] | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``glacier ARGS`` (``python -m glacier.cli``), or under a fault of ``faults.py``."""
    command = [sys.executable, "-m", "glacier.cli", *args]
    if fault is not None:
        command = [sys.executable, str(TESTS / "faults.py"), *fault, "--", *args]
    return subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        env=environment(**env),
        check=False,
        timeout=600,
    )


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines a failed run left on stderr (warnings of libraries aside)."""
    return [
        line
        for line in done.stderr.splitlines()
        if line.strip() and "Warning" not in line and not line.startswith("  ")
    ]


def everest_files(
    folder: Path, scale: int = 1, divide: int = 1, dtype: str = "uint8"
) -> list[Path]:
    """The Everest sample's RGB and NIR files with values ``x * scale // divide`` in ``dtype``.

    The 0 border is declared nodata (as the issue's uint16 scene). Returns [rgb, nir].
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in (RGB, NIR):
        with rasterio.open(sample_path(name)) as src:
            profile = src.profile
            values = src.read().astype(np.int64) * scale // divide
        profile.update(dtype=dtype, nodata=0)
        path = folder / name
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values.astype(dtype))
        paths.append(path)
    return paths


def two_layer_outlines(path: Path) -> Path:
    """A GeoPackage: first layer ``aoi`` (one box), second ``glaciers`` (the RGI outlines)."""
    outlines = gpd.read_file(sample_path("glacier_outlines.gpkg"))
    box = gpd.GeoDataFrame({"name": ["aoi"]}, geometry=[shapely.box(*outlines.total_bounds)])
    box.set_crs(outlines.crs).to_file(path, layer="aoi")
    outlines.to_file(path, layer="glaciers")
    return path


def far_outlines(path: Path) -> Path:
    """One glacier polygon in the Alps: it covers no part of the Everest scene."""
    frame = gpd.GeoDataFrame(
        {"name": ["elsewhere"]}, geometry=[shapely.box(7.0, 46.0, 7.1, 46.1)], crs="EPSG:4326"
    )
    frame.to_file(path)
    return path


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file and the contract it holds."""

    path: Path
    contract: DatasetContract


def checkpoint_of(contract: DatasetContract, path: Path) -> Checkpoint:
    """A genuine (untrained) glacier checkpoint holding ``contract``, without a Trainer."""
    import pytorch_lightning as pl
    import torch

    from glacier.models import GlacierSegmenter

    module = GlacierSegmenter(
        model={"_target_": "glacier.models.unet.DropoutUNet", "depth": 2, "base_filters": 4},
        loss={"_target_": "glacier.models.losses.CrossEntropyLoss"},
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True},
        class_names=list(contract.classes),
        channel_names=contract.channel_names,
        data=contract.to_dict(),
    )
    state = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": pl.__version__,
    }
    torch.save(state, path)
    return Checkpoint(path, contract)


@dataclass(frozen=True)
class Everest:
    """The Everest sample preprocessed, a checkpoint of its contract, and a finished map."""

    root: Path
    processed: Path
    checkpoint: Checkpoint
    maps: Path


def finished_everest(root: Path) -> Everest:
    """Preprocess the sample under ``root``, make a checkpoint of it, map the scene with it."""
    from conftest import compose_config

    from glacier.data.contract import load_contract
    from glacier.tasks.preprocess import run_preprocess

    cfg = compose_config("preprocess", ["preprocessor.progress=false"], root)
    run_preprocess(cfg)
    processed = Path(cfg.paths.processed_dir)
    contract, _ = load_contract(processed)
    checkpoint = checkpoint_of(contract, root / "everest.ckpt")
    maps = root / "maps"
    done = glacier(["predict", f"ckpt_path={checkpoint.path}", f"out_dir={maps}"], root)
    assert done.returncode == 0, done.stderr[-2000:]
    return Everest(root, processed, checkpoint, maps)


def predict(everest: Everest, *overrides: str) -> list[str]:
    """``glacier predict`` arguments with the Everest checkpoint."""
    return ["predict", f"ckpt_path={everest.checkpoint.path}", "progress=false", *overrides]


def wait_for(pattern: str, folder: Path, process: subprocess.Popen[str], seconds: float) -> None:
    """Wait until a file matching ``pattern`` exists under ``folder`` (while the run is alive)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if list(folder.glob(pattern)):
            return
        time.sleep(0.02)
    raise AssertionError(f"{pattern} never appeared under {folder} (exit {process.poll()})")


def interrupted(
    command: list[str], cwd: Path, folder: Path, pattern: str, signum: int
) -> tuple[int, list[str]]:
    """Run ``glacier COMMAND``, send ``signum`` once ``pattern`` appears; exit status, lines."""
    process = subprocess.Popen(
        [sys.executable, "-m", "glacier.cli", *command],
        cwd=cwd,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # a job started in the background by a shell inherits SIGINT ignored; Python installs
        # its Ctrl-C handler only where SIGINT is not ignored, as in a terminal
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wait_for(pattern, folder, process, 300)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=300)
    return process.returncode, [line for line in stderr.splitlines() if line.startswith("glacier")]
