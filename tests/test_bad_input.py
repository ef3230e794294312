"""Bad input through the real pipeline: refused before the first write, earlier outputs intact.

Each case adds a mistake to a finished dataset and asserts the one-line message and that every
earlier file is byte-identical afterwards (unit checks of each validator: test_validate.py,
test_input_bands.py, test_names.py, test_dates.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from raster_inputs import spec_for, write_polygons, write_raster
from scene_files import tree_checksums

from glacier.data.contract import load_contract
from glacier.data.loading import GlacierDataModule
from glacier.data.preprocess import Preprocessor, RandomSplit, SliceFilter
from glacier.data.spec import DataSpec
from glacier.errors import GlacierInputError

BANDS = ["red", "nir"]


def preprocessor(spec: DataSpec, out: Path) -> Preprocessor:
    keep = SliceFilter(max_nodata_fraction=1.0)
    return Preprocessor(spec, keep, RandomSplit(0.6, 0.2, 0.2), out, progress=False)


@pytest.fixture
def finished(tmp_path: Path) -> tuple[Path, list[tuple[str, list[tuple[Path, list[str]]]]], Path]:
    """A finished dataset of one good 2-band scene, its scene list and its outlines."""
    scene = write_raster(tmp_path / "good.tif", count=2, value=40)
    outlines = write_polygons(tmp_path / "outlines.gpkg")
    scenes = [("good", [(scene, BANDS)])]
    out = tmp_path / "processed"
    preprocessor(spec_for(scenes, outlines, slice_size=32, overlap=0), out).run()
    return out, scenes, outlines


def refused(out: Path, spec: DataSpec, message: str) -> None:
    before = tree_checksums(out, skip=())
    with pytest.raises(GlacierInputError, match=message):
        preprocessor(spec, out).run()
    assert tree_checksums(out, skip=()) == before


def test_a_1x1_scene_added_to_a_finished_dataset_is_refused_up_front(finished, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out, scenes, outlines = finished
    tiny = write_raster(tmp_path / "tiny.tif", width=1, height=1, count=2)
    spec = spec_for([*scenes, ("tiny", [(tiny, BANDS)])], outlines, slice_size=32, overlap=0)
    refused(out, spec, r"tiny\.tif")


def test_a_second_scene_without_crs_is_refused_before_the_first_is_rewritten(  # type: ignore[no-untyped-def]
    finished, tmp_path
) -> None:
    out, _, outlines = finished
    rewritten = write_raster(tmp_path / "good.tif", count=2, value=41)  # the first scene changed
    nocrs = write_raster(tmp_path / "nocrs.tif", count=2, crs=None)
    spec = spec_for(
        [("good", [(rewritten, BANDS)]), ("nocrs", [(nocrs, BANDS)])],
        outlines,
        slice_size=32,
        overlap=0,
    )
    refused(out, spec, r"nocrs\.tif.*CRS")


def test_a_rotated_scene_is_refused(finished, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out, scenes, outlines = finished
    rotated = write_raster(tmp_path / "rotated.tif", count=2)
    with rasterio.open(rotated, "r+") as dst:
        dst.transform = dst.transform * rasterio.Affine.rotation(10)
    spec = spec_for([*scenes, ("rot", [(rotated, BANDS)])], outlines, slice_size=32, overlap=0)
    refused(out, spec, r"rotated\.tif")


def test_a_scene_id_leaving_the_folder_is_refused(finished, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, scenes, outlines = finished
    with pytest.raises(GlacierInputError, match="path separator"):
        spec_for([*scenes, ("../../escaped", scenes[0][1])], outlines, slice_size=32, overlap=0)
    assert not (tmp_path.parent / "escaped").exists()


def test_corrected_band_names_rebuild_the_dataset(finished) -> None:  # type: ignore[no-untyped-def]
    out, scenes, outlines = finished
    ((scene, _),) = scenes[0][1]
    swapped = spec_for([("good", [(scene, ["nir", "red"])])], outlines, slice_size=32, overlap=0)
    info = preprocessor(swapped, out).run()
    assert info is not None and [c["name"] for c in info["channels"]] == ["nir", "red"]
    contract, _ = load_contract(out)
    assert contract.channel_names == ["nir", "red"]


def test_a_band_file_short_of_the_scene_gives_nodata_not_zeros(tmp_path: Path) -> None:
    red = write_raster(tmp_path / "red.tif", width=80, height=80, value=40)
    from raster_inputs import grid

    shifted = write_raster(
        tmp_path / "nir.tif", width=80, height=80, value=90, transform=grid(10, 0)
    )
    outlines = write_polygons(tmp_path / "outlines.gpkg")
    spec = spec_for(
        [("s", [(red, ["red"]), (shifted, ["nir"])])], outlines, slice_size=32, overlap=0
    )
    out = tmp_path / "processed"
    preprocessor(spec, out).run()
    meta = pd.read_csv(out / "mask_metadata.csv")
    assert meta.loc[0, "nodata_fraction"] == pytest.approx(10 / 80)
    labels = np.load(out / "masks" / "mask_s.npy")
    assert (labels[:, :10] == 255).all() and (labels[:, 10:] != 255).all()


def test_statistics_with_a_zero_std_are_refused_naming_the_channel(finished) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = finished
    path = out / "dataset.json"
    info = json.loads(path.read_text())
    info["stats"]["std"]["nir"] = 0.0
    path.write_text(json.dumps(info))
    with pytest.raises(GlacierInputError, match=r"std of channel 'nir' is 0\.0"):
        GlacierDataModule(out).setup("fit")


def test_a_dataset_missing_a_file_its_index_names_is_not_trusted(finished) -> None:  # type: ignore[no-untyped-def]
    out, scenes, outlines = finished
    (out / "masks" / "mask_good.npy").unlink()
    with pytest.raises(GlacierInputError, match=r"lacks 1 file\(s\).*mask_good\.npy"):
        GlacierDataModule(out, num_workers=0).setup("fit")
    spec = spec_for(scenes, outlines, slice_size=32, overlap=0)
    assert not preprocessor(spec, out).is_complete()  # prepare_data rebuilds it
    preprocessor(spec, out).run()
    assert (out / "masks" / "mask_good.npy").is_file()


@pytest.mark.parametrize(("key", "value"), [("n_jobs", 0), ("num_shards", 0)])
def test_impossible_preprocessing_settings_are_named(finished, key: str, value: int) -> None:  # type: ignore[no-untyped-def]
    out, scenes, outlines = finished
    spec = spec_for(scenes, outlines, slice_size=32, overlap=0)
    with pytest.raises(GlacierInputError, match=f"{key}={value}"):
        Preprocessor(spec, SliceFilter(), RandomSplit(), out, **{key: value})


def test_batch_size_zero_is_named() -> None:
    with pytest.raises(GlacierInputError, match="batch_size=0"):
        GlacierDataModule("anywhere", batch_size=0)
