"""A Landsat QA band's cloud and shadow flags become nodata in reading, preprocessing, batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from raster_inputs import grid, spec_for, write_polygons
from rasterio.windows import Window

from glacier.data.contract import IGNORE_INDEX, load_contract
from glacier.data.loading import LABEL_KEY, BatchLayout
from glacier.data.preprocess import Preprocessor, RandomSplit, SliceFilter
from glacier.data.raster import open_scene
from glacier.errors import GlacierInputError

CLOUD = 1 << 4 | 3 << 5  # cloud bit and high cloud confidence (Collection 1 BQA)
SHADOW = 3 << 7  # high cloud-shadow confidence
CLEAR = 1 << 2  # a bit the mask ignores (radiometric saturation)


def write_scene_with_qa(path: Path, width: int = 64, height: int = 64) -> np.ndarray:
    """Three uint16 bands and a BQA band with a cloud in the top-left and a shadow below it."""
    qa = np.full((height, width), CLEAR, dtype=np.uint16)
    qa[:16, :16] = CLOUD
    qa[16:24, :16] = SHADOW
    bands = np.stack([np.full((height, width), 100 + k, np.uint16) for k in range(3)])
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 4,
        "dtype": "uint16",
        "crs": "EPSG:32645",
        "transform": grid(),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.concatenate([bands, qa[None]]))
    return qa


def spec(tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    scene = tmp_path / "scene.tif"
    write_scene_with_qa(scene)
    labels = write_polygons(tmp_path / "outlines.gpkg")
    return spec_for(
        [("s1", [(scene, ["B1", "B2", "B3", "BQA"])])], labels, slice_size=32, overlap=0, **kw
    )


def test_the_reader_turns_flagged_pixels_into_nodata(tmp_path: Path) -> None:
    data = spec(tmp_path, qa_band="BQA")
    with open_scene(data.scenes[0], data) as reader:
        image, valid = reader.read_with_mask(Window(0, 0, 64, 64))
    assert not valid[:24, :16].any() and valid[24:, :].all() and valid[:, 16:].all()
    assert np.isnan(image[:, :24, :16]).all()
    only_clouds = spec(tmp_path, qa_band="BQA", qa_mask=["cloud"])
    with open_scene(only_clouds.scenes[0], only_clouds) as reader:
        _, valid = reader.read_with_mask(Window(0, 0, 64, 64))
    assert not valid[:16, :16].any() and valid[16:24, :16].all()


def test_preprocessing_marks_clouded_labels_nodata_and_records_the_rule(tmp_path: Path) -> None:
    data = spec(tmp_path, qa_band="BQA")
    out = tmp_path / "processed"
    Preprocessor(data, SliceFilter(), RandomSplit(0.6, 0.2, 0.2), out, progress=False).run()
    contract, _ = load_contract(out)
    assert contract.nodata.qa is not None and contract.nodata.qa.band == "BQA"
    mask = np.load(out / "masks" / "mask_s1.npy")
    assert (mask[:24, :16] == IGNORE_INDEX).all()
    assert (mask[24:, 16:] != IGNORE_INDEX).all()


def test_a_qa_band_the_scene_lacks_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(GlacierInputError, match=r"data.qa_band='QA_PIXEL' is not one of its bands"):
        spec(tmp_path, qa_band="QA_PIXEL")
    with pytest.raises(GlacierInputError, match=r"data\.qa_mask"):
        spec(tmp_path, qa_band="BQA", qa_mask=["clouds"])


def test_batches_of_the_release_in_place_mark_flagged_pixels(tmp_path: Path) -> None:
    """The release's patches are read as they are: the batch applies the same QA bit tests."""
    from glacier.data.contract import Channel, DatasetContract, NodataRule, QaMask
    from glacier.data.hkh.release import RELEASE_BANDS  # the 15 channels, BQA among them

    channels = tuple(Channel(name, dtype="float32") for name in RELEASE_BANDS)
    contract = DatasetContract("r", channels, ("glacier",), nodata=NodataRule(qa=QaMask("BQA")))
    layout = BatchLayout.of(contract, ["B1", "B2"], ["glacier"])
    image = torch.ones((1, 4, 4, len(channels)))
    image[..., RELEASE_BANDS.index("BQA")] = CLEAR  # (1 would be the fill bit)
    image[0, 0, 0, RELEASE_BANDS.index("BQA")] = CLOUD
    image[0, 1, 1, RELEASE_BANDS.index("BQA")] = SHADOW
    batch = {"image_float32": image, LABEL_KEY: torch.zeros((1, 4, 4, 1), dtype=torch.uint8)}
    invalid = layout.invalid(batch)
    assert invalid[0, 0, 0] and invalid[0, 1, 1] and invalid.sum() == 2
