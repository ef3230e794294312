"""Resilience: killed runs, corrupt inputs, unsafe checkpoints, escaping output paths."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scene_files import tree_checksums, write_disc_outline, write_scene

ROOT = Path(__file__).resolve().parents[1]
WIDTH = HEIGHT = 1536


def preprocess_command(root: Path, scene: Path, outline: Path, out: Path) -> list[str]:
    """``python preprocess.py`` on a plain 4-band scene with one glacier class."""
    return [
        sys.executable,
        str(ROOT / "preprocess.py"),
        f"paths.root_dir={root}",
        f"paths.processed_dir={out}",
        "data.name=big",
        "data.scenes=[{id: big, sources: [{path: '"
        + str(scene)
        + "', bands: [red, green, blue, nir]}]}]",
        f"data.labels=[{{path: '{outline}', class_name: glacier}}]",
        "data.slice_size=64",
        "data.overlap=0",
        f"hydra.run.dir={root}/hydra",
    ]


@pytest.mark.slow
def test_preprocessing_killed_midway_then_rerun_equals_clean_run(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif", WIDTH, HEIGHT)
    outline = write_disc_outline(tmp_path / "outline.gpkg", WIDTH, HEIGHT)
    env = {**os.environ, "WANDB_MODE": "disabled"}

    clean = tmp_path / "clean"
    subprocess.run(
        preprocess_command(tmp_path, scene, outline, clean), check=True, env=env, cwd=ROOT
    )

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        preprocess_command(tmp_path, scene, outline, killed),
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(list((killed / "slices").glob("*.npy"))) > 200:
            break
        time.sleep(0.05)
    assert process.poll() is None, "preprocessing finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "dataset.json").exists()

    subprocess.run(
        preprocess_command(tmp_path, scene, outline, killed), check=True, env=env, cwd=ROOT
    )
    expected, actual = tree_checksums(clean), tree_checksums(killed)
    assert actual.keys() == expected.keys()
    assert actual == expected


def test_truncated_slice_file_names_the_file(tmp_path: Path) -> None:
    from glacier.data.dataset import SliceDataset
    from glacier.errors import GlacierInputError

    split = tmp_path / "train"
    split.mkdir()
    np.save(split / "slice_a_img_0.npy", np.zeros((8, 8, 3), dtype=np.float32))
    np.save(split / "slice_a_label_0.npy", np.zeros((8, 8, 1), dtype=np.uint8))
    data = (split / "slice_a_img_0.npy").read_bytes()
    (split / "slice_a_img_0.npy").write_bytes(data[: len(data) // 2])
    dataset = SliceDataset(split, [0, 1, 2], [0], augment=False)
    with pytest.raises(GlacierInputError, match=r"slice_a_img_0\.npy"):
        dataset[0]


def test_corrupt_geotiff_names_the_file(tmp_path: Path) -> None:
    from glacier.data.scene import SceneReader
    from glacier.data.spec import BandSource, SceneSpec
    from glacier.errors import GlacierInputError

    path = write_scene(tmp_path / "scene.tif", 64, 64)
    path.write_bytes(path.read_bytes()[:300])
    scene = SceneSpec(id="s", sources=(BandSource(path=path, bands=("a", "b", "c", "d")),))
    with pytest.raises(GlacierInputError, match=r"scene\.tif"):
        SceneReader(scene)
