"""Resilience: killed runs, corrupt inputs, unsafe checkpoints, escaping output paths."""

from __future__ import annotations

import json
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
        if list((killed / ".staging").glob("*/scenes/big/*.npy")):  # storing pixels
            break
        time.sleep(0.01)
    assert process.poll() is None, "preprocessing finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "dataset.json").exists()
    assert not (killed / "scenes").exists()  # nothing half-written under a final name

    subprocess.run(
        preprocess_command(tmp_path, scene, outline, killed), check=True, env=env, cwd=ROOT
    )
    expected, actual = tree_checksums(clean), tree_checksums(killed)
    assert actual.keys() == expected.keys()
    assert actual == expected


def test_truncated_scene_array_names_the_file(tmp_path: Path) -> None:
    import pandas as pd

    from glacier.data.contract import Channel
    from glacier.data.loading import WindowDataset
    from glacier.data.store import SceneStore
    from glacier.errors import GlacierInputError

    store = SceneStore(tmp_path, [Channel("a", dtype="uint8"), Channel("b", dtype="uint8")])
    image, labels = store.paths("scene_a")
    image.parent.mkdir(parents=True)
    labels.parent.mkdir(parents=True)
    np.save(image, np.zeros((16, 16, 2), dtype=np.uint8))
    np.save(labels, np.zeros((16, 16, 1), dtype=np.uint8))
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])
    assert store.missing(["scene_a"]) == [image]
    windows = pd.DataFrame({"scene": ["scene_a"], "row_off": [0], "col_off": [0], "size": [8]})
    with pytest.raises(GlacierInputError, match=r"scene_a.*image_uint8\.npy"):
        WindowDataset(store, windows)[0]


def test_corrupt_geotiff_names_the_file(tmp_path: Path) -> None:
    from glacier.data.raster import SceneReader
    from glacier.data.spec import BandSource, SceneSpec
    from glacier.errors import GlacierInputError

    path = write_scene(tmp_path / "scene.tif", 64, 64)
    path.write_bytes(path.read_bytes()[:300])
    scene = SceneSpec(id="s", sources=(BandSource(path=path, bands=("a", "b", "c", "d")),))
    with pytest.raises(GlacierInputError, match=r"scene\.tif"):
        SceneReader(scene)


class _Exploit:
    """Unpickling this runs a shell command: a checkpoint must never execute it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def small_checkpoint(path: Path) -> Path:
    """A genuine (untrained) glacier checkpoint without running a Trainer."""
    import pytorch_lightning as pl
    import torch

    from glacier.data.contract import Channel, ChannelStats, DatasetContract
    from glacier.models import GlacierSegmenter

    bands = ["red", "green", "blue", "nir"]
    contract = DatasetContract(
        name="small",
        channels=tuple(Channel(b, dtype="uint8") for b in bands),
        classes=("glacier",),
        band_layout=(("red", "green", "blue"), ("nir",)),
        stats=ChannelStats(mean=dict.fromkeys(bands, 0.0), std=dict.fromkeys(bands, 1.0)),
    )
    module = GlacierSegmenter(
        model={"_target_": "glacier.models.unet.DropoutUNet", "depth": 2, "base_filters": 4},
        loss={"_target_": "glacier.models.losses.CrossEntropyLoss"},
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True},
        class_names=["glacier"],
        channel_names=bands,
        data=contract.to_dict(),
    )
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": pl.__version__,
        },
        path,
    )
    return path


def test_checkpoints_never_unpickle_code(tmp_path: Path) -> None:
    import torch

    from glacier.errors import GlacierInputError
    from glacier.tasks.predict import load_segmenter

    good = small_checkpoint(tmp_path / "good.ckpt")
    assert load_segmenter(good).class_names == ["glacier"]
    state = torch.load(good, weights_only=True)
    marker = tmp_path / "pwned"
    state["extra"] = _Exploit(marker)
    torch.save(state, tmp_path / "evil.ckpt")
    with pytest.raises(GlacierInputError, match=r"evil\.ckpt"):
        load_segmenter(tmp_path / "evil.ckpt")
    assert not marker.exists()


def test_checkpoint_of_an_incompatible_model_names_the_file(tmp_path: Path) -> None:
    import torch

    from glacier.errors import GlacierInputError
    from glacier.tasks.predict import load_segmenter

    state = torch.load(small_checkpoint(tmp_path / "a.ckpt"), weights_only=True)
    state["hyper_parameters"]["model"]["base_filters"] = 8  # weights no longer fit the model
    torch.save(state, tmp_path / "mismatch.ckpt")
    with pytest.raises(GlacierInputError, match=r"mismatch\.ckpt"):
        load_segmenter(tmp_path / "mismatch.ckpt")


def train_command(root: Path, extra: list[str]) -> list[str]:
    """``python train.py`` on the synthetic data, small and slow enough to be interrupted."""
    return [
        sys.executable,
        str(ROOT / "train.py"),
        f"paths.root_dir={root}",
        f"hydra.run.dir={root}/run",
        "data=synthetic",
        "logger=csv",
        "callbacks.prediction_panels=null",
        "callbacks.early_stopping=null",
        "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false",
        "model.depth=3",
        "model.base_filters=8",
        "test=false",
        "trainer.max_epochs=6",
        *extra,
    ]


@pytest.mark.slow
def test_training_killed_midway_resumes_at_the_right_epoch_and_step(tmp_path: Path) -> None:
    import torch

    env = {**os.environ, "WANDB_MODE": "disabled"}
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(
        train_command(tmp_path, []),
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if last.exists() and torch.load(last, weights_only=True)["epoch"] >= 1:
            break
        time.sleep(0.2)
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = torch.load(last, weights_only=True)
    steps_per_epoch = killed["global_step"] // (killed["epoch"] + 1)
    subprocess.run(
        train_command(tmp_path / "resumed", [f"ckpt_path={last}"]),
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    final = torch.load(
        tmp_path / "resumed" / "run" / "checkpoints" / "last.ckpt", weights_only=True
    )
    assert final["epoch"] == 5
    assert final["global_step"] == 6 * steps_per_epoch


def two_scene_command(root: Path, s0: Path, s1: Path, outline: Path, out: Path) -> list[str]:
    """``python preprocess.py`` on two plain 4-band scenes with one glacier class."""
    sources = [
        f"{{id: {sid}, sources: [{{path: '{path}', bands: [red, green, blue, nir]}}]}}"
        for sid, path in (("s0", s0), ("s1", s1))
    ]
    return [
        sys.executable,
        str(ROOT / "preprocess.py"),
        f"paths.root_dir={root}",
        f"paths.processed_dir={out}",
        "preprocessor.progress=false",
        "data.name=two",
        f"data.scenes=[{', '.join(sources)}]",
        f"data.labels=[{{path: '{outline}', class_name: glacier}}]",
        "data.derived=[]",
        "~data.channel_sets",
        "data.slice_size=64",
        "data.overlap=0",
        f"hydra.run.dir={root}/hydra",
    ]


def trains_or_is_refused(out: Path) -> str:
    """``trains`` when the dataset gives a batch and its arrays fit its index, else the refusal."""
    import pandas as pd

    from glacier.data.loading import GlacierDataModule
    from glacier.errors import GlacierInputError

    try:
        module = GlacierDataModule(out, num_workers=0, batch_size=2)
        module.setup("fit")
    except GlacierInputError as refusal:
        assert "is half-written" in str(refusal), refusal
        return str(refusal)
    batch = module.prepare_batch(next(iter(module.train_dataloader())), train=True)
    assert batch["image"].shape == (2, 4, 64, 64) and batch["mask"].shape == (2, 64, 64)
    scenes = pd.read_csv(out / "mask_metadata.csv").set_index("id")
    for scene, row in scenes.iterrows():  # the index describes the arrays it names
        mask = np.load(out / "masks" / f"mask_{scene}.npy", mmap_mode="r")
        assert mask.shape[:2] == (row["height"], row["width"]), scene
    index = pd.read_csv(out / "splits.csv")
    for scene, windows in index.groupby("scene"):
        assert (windows["row_off"] < scenes.loc[scene, "height"]).all()
        assert (windows["col_off"] < scenes.loc[scene, "width"]).all()
    return "trains"


@pytest.mark.slow
def test_a_kill_at_random_points_of_a_scene_replacement_leaves_a_dataset_that_trains_or_is_refused(
    tmp_path: Path,
) -> None:
    import random

    env = {**os.environ, "WANDB_MODE": "disabled"}
    env.pop("GLACIER_TASK", None)
    versions = {
        "small": write_scene(tmp_path / "v_small.tif", 640, 512, seed=1),
        "large": write_scene(tmp_path / "v_large.tif", 1600, 1280, seed=2),
    }
    s0 = write_scene(tmp_path / "s0.tif", 512, 512)
    s1 = tmp_path / "s1.tif"
    outline = write_disc_outline(tmp_path / "outline.gpkg", 512, 512)
    out = tmp_path / "processed"
    command = two_scene_command(tmp_path, s0, s1, outline, out)

    def replace_s1(version: str) -> None:  # a new file: its fingerprint changes, s1 is redone
        s1.write_bytes(versions[version].read_bytes())

    replace_s1("small")
    subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True)
    started = time.monotonic()
    replace_s1("large")
    subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True)
    whole = time.monotonic() - started  # one replacement, from start to end
    # a power cut in the middle of the moves: refused by name until a run finishes the moves
    replace_s1("small")
    faulty = [sys.executable, str(ROOT / "tests" / "faults.py"), "kill-mid-publish", "--"]
    killed = subprocess.run([*faulty, "preprocess", *command[2:]], env=env, cwd=ROOT, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert "half-written" in trains_or_is_refused(out)
    # a kill while s1 is being stored, then kills at random moments of whole runs
    rng = random.Random(22)
    outcomes = []
    for attempt in range(9):
        replace_s1("large" if attempt % 2 == 0 else "small")
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if attempt == 0:
            while not list(out.glob(".staging/scene_s1.*/scenes/s1/*.npy")):
                time.sleep(0.01)
        else:
            time.sleep(rng.uniform(0.2, whole))
        process.send_signal(signal.SIGKILL if attempt % 2 == 0 else signal.SIGINT)
        process.wait()
        outcomes.append((process.returncode, trains_or_is_refused(out)))
    assert outcomes[0][0] == -signal.SIGKILL and outcomes[0][1] == "trains"  # the old dataset
    subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True)
    assert trains_or_is_refused(out) == "trains"
    assert not list((out / ".staging").iterdir())  # the dead runs' leftovers are gone

    clean = tmp_path / "clean"  # the same final inputs, preprocessed once
    subprocess.run(
        two_scene_command(tmp_path, s0, s1, outline, clean),
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    stamps = ("dataset.json", "generation.json")  # generations count this folder's history
    expected = tree_checksums(clean)
    actual = tree_checksums(out)
    assert actual.keys() == expected.keys()
    assert {k: v for k, v in actual.items() if not k.endswith(stamps)} == {
        k: v for k, v in expected.items() if not k.endswith(stamps)
    }
    ours, theirs = (json.loads((p / "dataset.json").read_text()) for p in (out, clean))
    for info in (ours, theirs):
        info.pop("generation"), info.pop("scene_generations")
    assert ours == theirs
