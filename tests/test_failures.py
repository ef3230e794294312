"""Failures through the real ``glacier`` command: one line, its exit status, nothing half-written.

Bad input ends with exit status 2, the machine (full disk, read-only folder, a missing file
behind a VRT) with 1, each in one line naming the file and the cause; earlier outputs are
byte-identical afterwards. Faults that need a full or read-only disk are injected
(``tests/faults.py``). Signals, kills at random moments and the slower commands:
``test_failures_slow.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import compose_config
from failure_cases import (
    NIR,
    RGB,
    Checkpoint,
    checkpoint_of,
    environment,
    error_lines,
    everest_files,
    far_outlines,
    glacier,
    two_layer_outlines,
)
from scene_files import tree_checksums, write_disc_outline, write_scene

from glacier.data.contract import load_contract
from glacier.data.loading import GlacierDataModule
from glacier.data.spec import BandSource, SceneSpec, sample_path
from glacier.errors import GlacierInputError
from glacier.tasks.preprocess import run_preprocess

SCENE = "LE71400412000304SGS00"


@dataclass(frozen=True)
class Everest:
    """The Everest sample preprocessed, a checkpoint of its contract, and a finished map."""

    root: Path
    processed: Path
    checkpoint: Checkpoint
    maps: Path


@pytest.fixture(scope="module")
def everest(tmp_path_factory: pytest.TempPathFactory) -> Everest:
    root = tmp_path_factory.mktemp("everest")
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
    return ["predict", f"ckpt_path={everest.checkpoint.path}", "progress=false", *overrides]


def test_the_contract_records_source_dtypes_and_training_ranges(everest: Everest) -> None:
    contract = everest.checkpoint.contract
    assert contract.channel("red").source_dtypes == ("uint8",)
    assert contract.channel("ndvi").source_dtypes == ()  # computed, not read
    assert contract.stats is not None
    low, high = contract.stats.ranges["red"]
    with rasterio.open(sample_path("LE71400412000304SGS00_RGB.TIF")) as src:
        red = src.read(1)
    assert 0 < low < high <= red.max() == 255


def test_a_uint16_scene_is_refused_by_a_uint8_checkpoint(everest: Everest, tmp_path: Path) -> None:
    rgb, nir = everest_files(tmp_path / "uint16", scale=257, dtype="uint16")
    before = tree_checksums(everest.maps, skip=())
    done = glacier(predict(everest, f"input=[{rgb},{nir}]", f"out_dir={everest.maps}"), tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = error_lines(done)
    assert line.startswith(f"glacier predict: error: {rgb}: band 'red' is uint16, values ")
    assert "% of them outside the training range" in line
    assert "was trained on uint8, values " in line and "input_conversion=" in line
    assert tree_checksums(everest.maps, skip=()) == before


def test_outlines_that_cover_none_of_the_scene_are_refused(
    everest: Everest, tmp_path: Path
) -> None:
    far = far_outlines(tmp_path / "alps.gpkg")
    done = glacier(predict(everest, f"labels={far}", f"out_dir={tmp_path}/maps"), tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = error_lines(done)
    assert f"no outline of labels={far} overlaps scene '{SCENE}'" in line
    assert "empty reference" in line
    assert not (tmp_path / "maps").exists()


def test_a_two_layer_outline_file_is_refused_until_the_layer_is_named(
    everest: Everest, tmp_path: Path
) -> None:
    gpkg = two_layer_outlines(tmp_path / "two.gpkg")
    labels = f"data.labels=[{{path: '{gpkg}', class_name: glacier}}]"
    base = ["preprocess", "preprocessor.progress=false"]
    before = tree_checksums(everest.processed, skip=())
    done = glacier([*base, f"paths.processed_dir={everest.processed}", labels], tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = error_lines(done)
    assert f"{gpkg} has 2 layers: aoi (Polygon, 1 feature), glaciers (" in line
    assert "86 features), name the one" not in line and "86 features); name the one" in line
    assert "data.labels[0].layer=NAME" in line
    assert tree_checksums(everest.processed, skip=()) == before

    named = labels.replace("class_name: glacier", "class_name: glacier, layer: glaciers")
    done = glacier([*base, f"paths.processed_dir={tmp_path}/named", named], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    mask = f"masks/mask_{SCENE}.npy"  # the named layer gives the sample's own mask
    np.testing.assert_array_equal(
        np.load(tmp_path / "named" / mask), np.load(everest.processed / mask)
    )


def test_a_full_disk_while_preprocessing_is_one_line_and_leaves_nothing(
    everest: Everest, tmp_path: Path
) -> None:
    before = tree_checksums(everest.processed, skip=())
    args = ["preprocess", f"paths.processed_dir={everest.processed}", "data.overlap=32"]
    done = glacier([*args, "preprocessor.progress=false"], tmp_path, fault=["enospc-reserve"])
    assert done.returncode == 1, done.stderr[-2000:]
    (line,) = error_lines(done)
    assert line.startswith("glacier preprocess: error: ")
    assert "No space left on device while reserving" in line and ".npy" in line
    assert not list((everest.processed / ".staging").iterdir())  # no staging left behind
    assert tree_checksums(everest.processed, skip=()) == before


def write_vrt(path: Path, rgb: Path, nir: Path) -> Path:
    """A 4-band VRT over the sample's RGB file and a NIR file (sources relative to it)."""
    with rasterio.open(rgb) as src:
        crs, transform, width, height = src.crs, src.transform, src.width, src.height
    bands = [(rgb, 1), (rgb, 2), (rgb, 3), (nir, 1)]
    sources = "".join(
        f'<VRTRasterBand dataType="Byte" band="{i}"><SimpleSource><SourceFilename '
        f'relativeToVRT="0">{file}</SourceFilename><SourceBand>{band}</SourceBand>'
        "</SimpleSource></VRTRasterBand>"
        for i, (file, band) in enumerate(bands, start=1)
    )
    path.write_text(
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>{crs.to_wkt()}</SRS>'
        f"<GeoTransform>{', '.join(map(str, transform.to_gdal()))}</GeoTransform>{sources}"
        "</VRTDataset>"
    )
    return path


def test_a_vrt_whose_source_is_missing_is_one_line_naming_it(tmp_path: Path) -> None:
    nir = tmp_path / "nir.tif"
    shutil.copy(sample_path(NIR), nir)
    vrt = write_vrt(tmp_path / "scene.vrt", sample_path(RGB), nir)
    nir.unlink()
    scene = f"data.scenes=[{{id: v, sources: [{{path: '{vrt}', bands: [red, green, blue, nir]}}]}}]"
    args = ["preprocess", scene, f"paths.processed_dir={tmp_path}/processed"]
    args.append("preprocessor.progress=false")
    done = glacier(args, tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    (line,) = error_lines(done)
    assert f"{vrt} reads {nir}, which does not exist" in line
    assert not (tmp_path / "processed" / "dataset.json").exists()
    traced = glacier(args, tmp_path, HYDRA_FULL_ERROR="1")
    assert traced.returncode == 1 and "Traceback" in traced.stderr
    assert "GlacierEnvironmentError" in traced.stderr


def copy_of(processed: Path, target: Path) -> Path:
    return Path(shutil.copytree(processed, target))


def test_readers_refuse_arrays_of_another_generation_by_name(
    everest: Everest, tmp_path: Path
) -> None:
    out = copy_of(everest.processed, tmp_path / "copy")
    GlacierDataModule(out, num_workers=0).setup("fit")
    info = json.loads((out / "dataset.json").read_text())
    assert info["generation"] == 1 and info["scene_generations"] == {SCENE: 1}
    stamp = out / "scenes" / SCENE / "generation.json"
    stamp.write_text(json.dumps({"generation": 2, "scene": SCENE}))
    message = rf"dataset 'everest' .* is half-written: scene {SCENE}'s arrays are generation 2"
    with pytest.raises(GlacierInputError, match=message + r".*re-run `glacier preprocess`"):
        GlacierDataModule(out, num_workers=0).setup("fit")


def test_readers_refuse_a_pending_publication_and_the_next_run_finishes_it(
    everest: Everest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import glacier.utils.publish as publish

    out = copy_of(everest.processed, tmp_path / "copy")
    cfg = compose_config(
        "preprocess",
        ["preprocessor.progress=false", f"paths.processed_dir={out}", "data.overlap=32"],
        tmp_path,
    )
    real = publish._apply
    applied: list[str] = []

    def killed_after_two(root: Path, move: publish.Move) -> None:
        if len(applied) == 2:
            raise KeyboardInterrupt  # stands for SIGKILL: the record stays, moves half done
        applied.append(move.target)
        real(root, move)

    monkeypatch.setattr(publish, "_apply", killed_after_two)
    with pytest.raises(BaseException):  # noqa: B017 (the interruption, whatever its type)
        run_preprocess(cfg)
    monkeypatch.setattr(publish, "_apply", real)
    assert applied == [f"scenes/{SCENE}", f"masks/mask_{SCENE}.npy"]
    (record,) = (out / ".staging").glob("*.publish.json")
    with pytest.raises(GlacierInputError, match=r"is half-written: `.*` was stopped while"):
        GlacierDataModule(out, num_workers=0).setup("fit")
    mask = out / "masks" / f"mask_{SCENE}.npy"
    moved = mask.stat().st_ino  # the new mask, moved in before the interruption
    run_preprocess(cfg)  # finishes the publication first, then finds the dataset up to date
    assert not record.exists() and not list((out / ".staging").iterdir())
    assert mask.stat().st_ino == moved  # finished, not redone
    module = GlacierDataModule(out, num_workers=0)
    module.setup("fit")
    assert json.loads((out / "dataset.json").read_text())["overlap"] == 32


def test_dead_runs_staging_is_removed_by_the_next_run(everest: Everest, tmp_path: Path) -> None:
    out = copy_of(everest.processed, tmp_path / "copy")
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = {"host": socket.gethostname(), "pid": int(ended.stdout), "command": "glacier preprocess"}
    folders = [out / ".staging" / f"scene_{name}.0badc0de" for name in (SCENE, "gone")]
    folders.append(out / ".staging" / "index.0badc0de")
    for folder in folders:  # a killed run's scene (this one, one no longer configured), index
        (folder / "scenes").mkdir(parents=True)
        (folder / "owner.json").write_text(json.dumps(dead))
    alive = out / ".staging" / "scene_other.0123abcd"  # a run still at work on this host
    (alive / "scenes").mkdir(parents=True)
    (alive / "owner.json").write_text(json.dumps(dead | {"pid": os.getpid()}))
    cfg = compose_config(
        "preprocess", ["preprocessor.progress=false", f"paths.processed_dir={out}"], tmp_path
    )
    run_preprocess(cfg)  # the dataset is up to date: nothing else happens
    assert sorted(p.name for p in (out / ".staging").iterdir()) == [alive.name]


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
    )
    wait_for(pattern, folder, process, 300)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=300)
    return process.returncode, [line for line in stderr.splitlines() if line.startswith("glacier")]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_mapping_ends_in_one_line_and_leaves_no_partial_file(
    everest: Everest, tmp_path: Path, signum: int
) -> None:
    before = tree_checksums(everest.maps, skip=())
    slow = predict(everest, f"out_dir={everest.maps}", "mc_samples=40", "tta=8", "overwrite=true")
    status, lines = interrupted(slow, tmp_path, everest.maps, ".staging/*/.*partial*", signum)
    name = signal.Signals(signum).name
    assert status == 128 + signum
    assert lines == [
        f"glacier predict: interrupted by {name}: 0 of 1 scene(s) mapped and published in "
        f"{everest.maps}; the scene(s) in progress left nothing behind; re-run the same command "
        "to map the rest"
    ]
    assert not [p for p in everest.maps.rglob("*") if "partial" in p.name]
    assert not (everest.maps / ".staging").exists()
    assert tree_checksums(everest.maps, skip=()) == before


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_preprocessing_keeps_the_dataset_and_says_so(
    tmp_path: Path, signum: int
) -> None:
    scene = write_scene(tmp_path / "big.tif", 1536, 1536)
    outline = write_disc_outline(tmp_path / "disc.gpkg", 1536, 1536)
    out = tmp_path / "processed"
    command = [
        "preprocess",
        "preprocessor.progress=false",
        f"paths.processed_dir={out}",
        f"data.scenes=[{{id: big, sources: [{{path: '{scene}', bands: [r, g, b, n]}}]}}]",
        f"data.labels=[{{path: '{outline}', class_name: glacier}}]",
        "data.derived=[]",
        "~data.channel_sets",
        "data.slice_size=64",
        "data.overlap=0",
    ]
    assert glacier(command, tmp_path).returncode == 0
    before = tree_checksums(out, skip=())
    again = [*command, "data.overlap=16"]  # the scene is stored again
    status, lines = interrupted(again, tmp_path, out, ".staging/scene_big.*/scenes/big/*", signum)
    assert status == 128 + signum
    assert lines == [
        f"glacier preprocess: interrupted by {signal.Signals(signum).name}: the dataset in {out} "
        "is unchanged (generation 1); this run's staged files were removed"
    ]
    assert not list((out / ".staging").iterdir())
    assert tree_checksums(out, skip=()) == before


@pytest.mark.slow
def test_a_stated_conversion_maps_the_uint16_scene_and_a_darker_scene_is_refused(
    everest: Everest, tmp_path: Path
) -> None:
    rgb, nir = everest_files(tmp_path / "uint16", scale=257, dtype="uint16")
    scale = "input_conversion={scale: 0.0038910505836575876}"  # 1/257
    maps = tmp_path / "maps"
    done = glacier(predict(everest, f"input=[{rgb},{nir}]", f"out_dir={maps}", scale), tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    converted, original = maps / f"{rgb.stem}_classes.tif", everest.maps / f"{SCENE}_classes.tif"
    with rasterio.open(converted) as ours, rasterio.open(original) as theirs:
        assert (ours.read(1) == theirs.read(1)).mean() > 0.999
    dark_rgb, dark_nir = everest_files(tmp_path / "dark", divide=4)
    done = glacier(predict(everest, f"input=[{dark_rgb},{dark_nir}]", f"out_dir={maps}"), tmp_path)
    assert done.returncode == 2
    (line,) = error_lines(done)
    assert f"{dark_rgb}: band 'red' is uint8, values " in line
    assert "was trained on uint8, values " in line  # the same dtype: refused on its range


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["enospc-write", "readonly"])
def test_a_full_or_read_only_output_folder_is_one_line_and_keeps_earlier_maps(
    everest: Everest, tmp_path: Path, fault: str
) -> None:
    before = tree_checksums(everest.maps, skip=())
    injected = [fault, str(everest.maps)] if fault == "readonly" else [fault]
    args = predict(everest, f"out_dir={everest.maps}", "mc_samples=2", "overwrite=true")
    done = glacier(args, tmp_path, fault=injected)
    assert done.returncode == 1, done.stderr[-2000:]
    (line,) = error_lines(done)
    if fault == "readonly":
        assert line.startswith(f"glacier predict: error: {everest.maps / '.staging'}")
        assert line.endswith(
            ": Permission denied; no permission to write there: write elsewhere or fix its "
            "permissions"
        )
    else:
        assert line.startswith("glacier predict: error: ") and "partial.tif: No space" in line
        assert "free space there (or write elsewhere) and re-run" in line
    assert not (everest.maps / ".staging").exists()
    assert tree_checksums(everest.maps, skip=()) == before


def everest_stack(path: Path, west_m: float = 0.0) -> Path:
    """The sample as one 4-band file (red, green, blue, nir), moved ``west_m`` metres west."""
    with rasterio.open(sample_path(RGB)) as rgb, rasterio.open(sample_path(NIR)) as nir:
        profile = rgb.profile | {"count": 4, "nodata": 0}
        profile["transform"] = rgb.transform @ rasterio.Affine.translation(-west_m / 30.0, 0)
        bands = np.concatenate([rgb.read(), nir.read()])
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


@pytest.mark.slow
def test_a_scene_no_outline_covers_is_marked_no_reference_in_a_batch(
    everest: Everest, tmp_path: Path
) -> None:
    everest_stack(tmp_path / "here.tif")
    everest_stack(tmp_path / "away.tif", west_m=300_000)  # no RGI outline of the sample there
    run = tmp_path / "run"
    labels = f"labels={sample_path('glacier_outlines.gpkg')}"
    args = predict(everest, f"input={tmp_path}/*.tif", labels, f"out_dir={run}/predict")
    done = glacier(args, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    away = json.loads((run / "predict" / "away_prediction.json").read_text())
    here = json.loads((run / "predict" / "here_prediction.json").read_text())
    assert "metrics" not in away and "overlaps scene 'away'" in away["no_reference"]
    assert "metrics" in here and "no_reference" not in here
    report = glacier(["report", f"run_dir={run}"], tmp_path)
    assert report.returncode == 0, report.stderr
    assert "Not scored:" in report.stdout and "away: no reference (no outline of" in report.stdout


@pytest.mark.slow
def test_training_on_an_empty_test_split_says_so_last_and_in_metrics(tmp_path: Path) -> None:
    args = [
        "train",
        "data=synthetic",
        "split.train=0.8",
        "split.dev=0.2",
        "split.test=0.0",
        "logger=none",
        "callbacks=none",
        "trainer.enable_progress_bar=false",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "model.depth=2",
        "model.base_filters=4",
        f"hydra.run.dir={tmp_path}/run",
    ]
    done = glacier(args, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]  # the log; Lightning's notes go to stderr
    assert "the test split of" in last and "is empty (0 slices): this run has no test" in last
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"] is None and "is empty (0 slices)" in metrics["test_skipped"]


def test_region_and_split_region_files_of_several_layers_need_the_layer_named(
    tmp_path: Path,
) -> None:
    from glacier.data.preprocess import GeographicSplit, Preprocessor, RandomSplit, SliceFilter
    from glacier.data.spec import DataSpec

    gpkg = two_layer_outlines(tmp_path / "two.gpkg")
    labels = [{"path": str(sample_path("glacier_outlines.gpkg")), "class_name": "glacier"}]
    scene = [{"id": "s", "sources": [{"path": str(sample_path(RGB)), "bands": ["r", "g", "b"]}]}]

    def check(**region: str) -> None:
        spec = DataSpec("t", ["glacier"], labels, scenes=scene, slice_size=128, **region)
        Preprocessor(spec, SliceFilter(), RandomSplit(), tmp_path / "out").check_inputs()

    with pytest.raises(GlacierInputError, match=r"\(data\.region\) .*two\.gpkg has 2 layers: aoi"):
        check(region=str(gpkg))
    check(region=str(gpkg), region_layer="aoi")
    with pytest.raises(GlacierInputError, match=r"has no layer 'aoi2' \(data\.region_layer\)"):
        check(region=str(gpkg), region_layer="aoi2")
    with pytest.raises(GlacierInputError, match=r"name the one to use with split\.test_regions"):
        GeographicSplit(test_regions=[str(gpkg)])
    split = GeographicSplit(test_regions=[{"path": str(gpkg), "layer": "aoi"}])
    assert len(split.test_regions) == 1
    assert not (tmp_path / "out").exists()


def test_predict_labels_of_several_layers_need_label_layer(
    everest: Everest, tmp_path: Path
) -> None:
    from glacier.tasks.predict import run_predict

    gpkg = two_layer_outlines(tmp_path / "two.gpkg")
    base = [f"ckpt_path={everest.checkpoint.path}", f"labels={gpkg}", f"out_dir={tmp_path}/maps"]
    with pytest.raises(GlacierInputError, match=r"name the one to use with label_layer=NAME"):
        run_predict(compose_config("predict", base, tmp_path))
    assert not (tmp_path / "maps").exists()


def test_contracts_from_before_dtypes_and_ranges_load_and_predict_warns(
    everest: Everest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from glacier.data.contract import DatasetContract
    from glacier.data.raster import InputConversion
    from glacier.tasks.predict_inputs import ReadSettings, check_input_values

    out = copy_of(everest.processed, tmp_path / "old")
    info = json.loads((out / "dataset.json").read_text())
    for channel in info["channels"]:
        channel.pop("source_dtypes", None)
    for key in ("generation", "scene_generations"):
        info.pop(key)
    info["stats"].pop("ranges")
    (out / "dataset.json").write_text(json.dumps(info))
    module = GlacierDataModule(out, num_workers=0)
    module.setup("fit")  # an older dataset still trains
    old = DatasetContract.from_dict(info)
    rgb, nir = everest_files(tmp_path / "uint16", scale=257, dtype="uint16")
    scenes = [
        SceneSpec("s", (BandSource(rgb, ("red", "green", "blue")), BandSource(nir, ("nir",))))
    ]
    read = ReadSettings(["ndvi", "ndwi"], {}, None, None)
    check_input_values(scenes, old, old.channel_names, read, "old.ckpt", 0.05)
    assert "records no training band dtypes or value ranges" in caplog.text
    new = everest.checkpoint.contract
    with pytest.raises(GlacierInputError, match="band 'red' is uint16"):
        check_input_values(scenes, new, new.channel_names, read, "new.ckpt", 0.05)
    stated = ReadSettings(["ndvi", "ndwi"], {}, None, None, conversion=InputConversion(1 / 257))
    check_input_values(scenes, new, new.channel_names, stated, "new.ckpt", 0.05)  # warns only


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_training_names_the_checkpoint_to_resume_from(
    tmp_path: Path, signum: int
) -> None:
    run = tmp_path / "run"
    args = [
        "train",
        "data=synthetic",
        "logger=none",
        "callbacks.prediction_panels=null",
        "callbacks.progress_bar=null",
        "callbacks.early_stopping=null",
        "trainer.enable_progress_bar=false",
        "trainer.max_epochs=100",
        "model.depth=2",
        "model.base_filters=4",
        f"hydra.run.dir={run}",
    ]
    status, lines = interrupted(args, tmp_path, run, "checkpoints/last.ckpt", signum)
    last = run / "checkpoints" / "last.ckpt"
    assert status == 128 + signum
    assert lines == [
        f"glacier train: interrupted by {signal.Signals(signum).name}: kept {last}; resume with "
        f"the same command and ckpt_path={last}"
    ]


def test_the_training_range_sample_is_every_nth_pixel_and_bounded() -> None:
    from glacier.data.preprocess.postprocess import RangeSample

    pixels = np.random.default_rng(0).normal(size=(300_007, 2))
    sample = RangeSample(limit=1000)
    for start in range(0, len(pixels), 70_001):  # blocks larger than the sample
        sample.update(pixels[start : start + 70_001])
    kept = np.concatenate(sample.parts)
    assert len(kept) <= 2000 and sample.step == 256
    np.testing.assert_array_equal(kept, pixels[:: sample.step].astype(np.float32))
    low, high = sample.quantiles(["a", "b"])["a"]
    assert low < -2 and high > 2
