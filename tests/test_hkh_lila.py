"""The published HKH patches layout imported as a processed dataset."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import compose_config
from hydra.utils import instantiate

from glacier.data.hkh_lila import HKH_CHANNELS, PatchImporter
from glacier.errors import GlacierInputError


def write_patches(root: Path, count: int = 6, size: int = 32) -> None:
    """Fake HKH patches: 15 channels, clean ice on the left third, a zero (nodata) corner."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rows = []
    for i in range(count):
        image = rng.uniform(0.1, 1.0, (size, size, len(HKH_CHANNELS))).astype(np.float32)
        image[:4, :4] = 0.0
        mask = np.zeros((size, size, 2), dtype=np.uint8)
        mask[:, : size // 3, 0] = 1
        mask[-4:, -4:, 1] = 1
        np.save(root / "images" / f"image{i}.npy", image)
        np.save(root / "masks" / f"mask{i}.npy", mask)
        lon = 86.0 + 0.1 * i
        rows.append(
            {"img_slice": f"image{i}.npy", "geometry": shapely.box(lon, 27.9, lon + 0.05, 28.0)}
        )
    gpd.GeoDataFrame(rows, crs="EPSG:4326").to_file(root / "metadata.geojson")


def test_hkh_patches_become_split_normalized_slices(tmp_path: Path) -> None:
    root = tmp_path / "hkh"
    write_patches(root)
    cfg = compose_config(
        "preprocess",
        ["data=hkh_lila", f"data.root={root}", f"data.metadata={root}/metadata.geojson"],
        tmp_path,
    )
    importer = instantiate(cfg.preprocessor, _convert_="all")
    assert isinstance(importer, PatchImporter)
    info = importer.run()
    assert info["channels"] == list(HKH_CHANNELS)
    assert info["classes"] == ["clean_ice", "debris"]
    assert sum(info["counts"].values()) == 6
    processed = Path(cfg.paths.processed_dir)
    label = np.load(processed / "slices" / "slice_hkh_label_0.npy")
    assert (label[:4, :4] == 255).all()  # all-zero pixels became nodata
    assert label[10, 2, 0] == 1 and label[10, 20, 0] == 0
    footprints = (
        gpd.read_file(processed / "slices" / "slices.geojson")
        if (processed / "slices" / "slices.geojson").exists()
        else None
    )
    assert footprints is None or len(footprints) == 6
    stats = json.loads((processed / "stats.json").read_text())
    assert len(stats["means"]) == 15
    assert importer.is_complete()


def test_hkh_wrong_channel_count_names_the_file(tmp_path: Path) -> None:
    root = tmp_path / "hkh"
    write_patches(root, count=2)
    np.save(root / "images" / "image1.npy", np.ones((32, 32, 4), dtype=np.float32))
    cfg = compose_config("preprocess", ["data=hkh_lila", f"data.root={root}"], tmp_path)
    with pytest.raises(GlacierInputError, match=r"image1\.npy"):
        instantiate(cfg.preprocessor, _convert_="all").run()
