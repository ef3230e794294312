"""Shared fixtures: Hydra compose helpers and datasets written to tmp paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from glacier.tasks.config import register_resolvers

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

CONFIG_DIR = Path(__file__).resolve().parents[1] / "src" / "glacier" / "configs"


def compose_config(name: str, overrides: list[str], root: Path) -> DictConfig:
    """Compose an entry config as Hydra would, with every output under ``root``.

    The commands load the configs as ``pkg://glacier.configs``, whose import registers
    glacier's resolvers; a config folder does not, so they are registered here.
    """
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose(
            config_name=name,
            overrides=[f"paths.root_dir={root}", f"paths.output_dir={root}/run", *overrides],
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(root / "run")
    return cfg


@pytest.fixture
def compose_in(tmp_path: Path) -> Iterator[object]:
    """Compose configs rooted in this test's tmp_path."""

    def _compose(name: str, overrides: list[str] | None = None) -> DictConfig:
        return compose_config(name, overrides or [], tmp_path)

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real one-node Slurm for tests/slurm (make test-slurm), started once per session."""
    from slurm_cluster import slurm_session

    yield from slurm_session(tmp_path_factory)
