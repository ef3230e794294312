"""Failures through the real ``glacier`` command: one line, its exit status, nothing half-written.

Bad input ends with exit status 2, the machine (full disk, read-only folder, a missing file
behind a VRT) with 1, each in one line naming the file and the cause; earlier outputs are
byte-identical afterwards. Faults that need a full or read-only disk are injected
(``tests/faults.py``). Signals and the slower commands: ``test_failures_slow.py``; kills at
random moments: ``test_resilience.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import compose_config
from failure_cases import (
    NIR,
    RGB,
    Everest,
    error_lines,
    everest_files,
    far_outlines,
    finished_everest,
    glacier,
    predict,
    two_layer_outlines,
)
from scene_files import tree_checksums

from glacier.data.loading import GlacierDataModule
from glacier.data.spec import BandSource, SceneSpec, sample_path
from glacier.errors import GlacierInputError
from glacier.tasks.preprocess import run_preprocess

SCENE = "LE71400412000304SGS00"


@pytest.fixture(scope="module")
def everest(tmp_path_factory: pytest.TempPathFactory) -> Everest:
    return finished_everest(tmp_path_factory.mktemp("everest"))


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
