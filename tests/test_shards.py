"""Preprocessing split into shards run by a Hydra launcher, then gathered; launcher configs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import CONFIG_DIR, compose_config
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf
from scene_files import tree_checksums

from glacier.data.preprocess import check_stage, stale_stagings
from glacier.data.spec import SyntheticDataset, ensure_synthetic_dataset
from glacier.errors import GlacierInputError
from glacier.tasks.preprocess import run_preprocess

ROOT = Path(__file__).resolve().parents[1]
BANDS = "[blue, green, red, nir, swir1, swir2]"
SHARED = ["mask_metadata.csv", "slices/slices.geojson", "splits.csv", "dataset.json"]


def two_scenes(data: SyntheticDataset) -> list[str]:
    """Overrides: the synthetic scene under two ids (s0, s1), as an explicit data config."""
    scene = f"sources: [{{path: '{data.scene}', bands: {BANDS}}}]"
    labels = f"{{path: '{data.clean_ice}', class_name: clean_ice}}, " + (
        f"{{path: '{data.debris}', class_name: debris}}"
    )
    return [
        "data=everest",
        "data.name=two",
        "data.classes=[clean_ice, debris]",
        f"data.scenes=[{{id: s0, {scene}}}, {{id: s1, {scene}}}]",
        f"data.labels=[{labels}]",
        "data.derived=[ndvi, ndsi]",
        "data.slice_size=64",
        "data.overlap=16",
        "~data.channel_sets",
        "preprocessor.progress=false",
    ]


@pytest.fixture
def scenes(tmp_path: Path) -> list[str]:
    return two_scenes(ensure_synthetic_dataset(tmp_path / "raw", seed=42))


def preprocess(root: Path, overrides: list[str]) -> dict[str, object] | None:
    """``glacier preprocess`` in-process, every output under ``root``."""
    return run_preprocess(compose_config("preprocess", overrides, root))


def test_two_shards_by_joblib_then_gather_equal_one_unsharded_run(
    tmp_path: Path, scenes: list[str]
) -> None:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env.pop("GLACIER_TASK", None)
    sharded = tmp_path / "sharded"
    command = [sys.executable, "-m", "glacier.cli", "preprocess", "-m", *scenes]
    command += ["shard=0,1", "num_shards=2", "hydra/launcher=joblib", f"paths.root_dir={sharded}"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    out = sharded / "data" / "processed" / "two"
    jobs = sorted((sharded / "logs" / "preprocess" / "multiruns").glob("*/[0-9]/preprocess.log"))
    assert len(jobs) == 2  # one job per shard, through the joblib launcher
    for scene in ("s0", "s1"):  # each shard staged its scene, ready for the gather
        (ready,) = (out / ".staging").glob(f"scene_{scene}.*/stage.json")
        assert (ready.parent / "masks" / f"mask_{scene}.npy").is_file()
    published = ["scenes", "masks", ".stages", *SHARED]
    assert not [name for name in published if (out / name).exists()]  # shards publish nothing

    info = preprocess(sharded, [*scenes, "stage=gather"])
    assert info is not None and sum(info["counts"].values()) > 0  # type: ignore[attr-defined]
    assert not list((out / ".staging").iterdir())  # the gather published the staged scenes
    whole = tmp_path / "whole"
    preprocess(whole, scenes)
    expected = tree_checksums(whole / "data" / "processed" / "two", skip=())
    assert tree_checksums(out, skip=()) == expected
    assert set(SHARED) <= set(expected)


def test_gather_waits_for_a_late_shard_and_names_missing_scenes(
    tmp_path: Path, scenes: list[str]
) -> None:
    preprocess(tmp_path, [*scenes, "shard=0", "num_shards=2"])
    gather = [*scenes, "stage=gather", "preprocessor.poll_seconds=0.1"]
    started = time.monotonic()
    with pytest.raises(GlacierInputError, match=r"1 of 2 scenes .* after waiting 1 s: s1\."):
        preprocess(tmp_path, [*gather, "wait_for_shards=1"])
    assert time.monotonic() - started >= 1.0

    gatherer = instantiate(
        compose_config("preprocess", [*gather, "wait_for_shards=120"], tmp_path).preprocessor,
        _convert_="all",
    )
    result: dict[str, object] = {}
    waiting = threading.Thread(target=lambda: result.update(info=gatherer.run()))
    waiting.start()
    time.sleep(0.5)
    assert waiting.is_alive()  # still waiting for shard 1
    preprocess(tmp_path, [*scenes, "shard=1", "num_shards=2"])
    waiting.join(timeout=120)
    assert not waiting.is_alive() and result["info"] is not None
    assert (tmp_path / "data" / "processed" / "two" / "splits.csv").is_file()


def test_stale_staging_cleanup_matches_only_its_own_scene(tmp_path: Path) -> None:
    names = ["scene_a.0123abcd", "scene_a.1.89abcdef", "scene_ab.01234567", "scene_a.notatokn"]
    for name in names:
        (tmp_path / name).mkdir()
    assert stale_stagings(tmp_path, "a") == [tmp_path / "scene_a.0123abcd"]
    assert stale_stagings(tmp_path, "a.1") == [tmp_path / "scene_a.1.89abcdef"]


def test_stage_is_checked() -> None:
    with pytest.raises(GlacierInputError, match="stage='gahter'"):
        check_stage("gahter", 2, 2)
    with pytest.raises(GlacierInputError, match="drop shard="):
        check_stage("gather", 1, 2)
    check_stage("gather", 2, 2)


LAUNCHERS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher.config.JobLibLauncherConf", "n_jobs", -1),
    "submitit_local": (
        "hydra_plugins.hydra_submitit_launcher.config.LocalQueueConf",
        "timeout_min",
        60,
    ),
    "submitit_slurm": (
        "hydra_plugins.hydra_submitit_launcher.config.SlurmQueueConf",
        "array_parallelism",
        16,  # ours; the plugin's default is 256
    ),
}


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_launcher_configs_are_ours_and_fit_the_plugins_schemas(name: str) -> None:
    schema_path, key, value = LAUNCHERS[name]
    ours = OmegaConf.load(CONFIG_DIR / "hydra" / "launcher" / f"{name}.yaml")
    schema = OmegaConf.structured(get_class(schema_path))
    assert set(ours) == set(schema)  # every key of the plugin, no other
    OmegaConf.merge(schema, ours)  # types fit
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("preprocess", [f"hydra/launcher={name}"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher[key] == value and launcher._target_ == ours._target_  # our file was chosen
    if name == "submitit_slurm":
        cluster_keys = ["partition", "gpus_per_node", "cpus_per_task", "timeout_min", "mem_gb"]
        assert set(cluster_keys) | {"array_parallelism", "additional_parameters"} <= set(launcher)
    built = instantiate(launcher, _convert_="all")
    assert type(built).__name__ == ours._target_.rsplit(".", 1)[1]
