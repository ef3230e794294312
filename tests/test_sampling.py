"""Random training windows: inside the training area, away from held-out pixels, repeatable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from lightning_fabric.utilities.distributed import DistributedSamplerWrapper
from torch.utils.data import DataLoader

from glacier.data.contract import Channel, image_path, mask_path, storage_groups
from glacier.data.loading import EpochSampler, RandomWindowDataset
from glacier.data.loading.sampling import allowed_area, box_sums, dilate
from glacier.data.store import SceneStore, training_area
from glacier.errors import GlacierInputError

HEIGHT, WIDTH = 96, 160
CHANNELS = (Channel("row", dtype="uint16"), Channel("col", dtype="uint16"))


@pytest.fixture
def store(tmp_path: Path) -> SceneStore:
    """One stored scene whose two channels hold each pixel's row and column."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    (group,) = storage_groups(CHANNELS)
    path = image_path(tmp_path, "s", group)
    path.parent.mkdir(parents=True)
    np.save(path, np.stack([rows, cols], axis=-1).astype(np.uint16))
    mask_path(tmp_path, "s").parent.mkdir(parents=True)
    np.save(mask_path(tmp_path, "s"), (rows % 2).astype(np.uint8)[..., None])
    return SceneStore(tmp_path, CHANNELS)


def index() -> pd.DataFrame:
    """Test: the left 32 columns; dev: top right corner; train: 32-px windows elsewhere."""
    rows = []
    for r in range(0, HEIGHT, 16):
        for c in range(0, WIDTH - 16, 16):
            split = "test" if c < 32 else "dev" if (r < 32 and c >= 112) else "train"
            rows.append(("s", split, r, c, 32))
    frame = pd.DataFrame(rows, columns=["scene", "split", "row_off", "col_off", "size"])
    return frame


def test_box_sums_and_dilate_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((20, 30)) > 0.9
    sums = box_sums(mask, 4, 6)
    assert sums.shape == (17, 25)
    assert sums[5, 7] == mask[5:9, 7:13].sum()
    grown = dilate(mask, 2)
    for r, c in [(0, 0), (10, 10), (19, 29), (5, 17)]:
        assert grown[r, c] == mask[max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3].any()


def test_allowed_area_keeps_the_margin_from_held_out_windows() -> None:
    frame = index()
    train, held = frame[frame.split == "train"], frame[frame.split != "train"]
    area = allowed_area((HEIGHT, WIDTH), train, held, margin=8)
    held_area = training_area((HEIGHT, WIDTH), held)
    assert area.any() and not (area & dilate(held_area, 8)).any()
    assert not (area & ~training_area((HEIGHT, WIDTH), train)).any()
    assert (area | dilate(held_area, 8) | ~training_area((HEIGHT, WIDTH), train)).all()


def test_windows_stay_inside_the_area_and_repeat_from_seed_epoch_index(
    store: SceneStore,
) -> None:
    frame = index()
    data = RandomWindowDataset(store, frame, size=24, length=50, margin=8, seed=3)
    area = allowed_area(
        (HEIGHT, WIDTH), frame[frame.split == "train"], frame[frame.split != "train"], 8
    )
    for epoch in range(3):
        for i in range(50):
            sample = data[(epoch, i)]
            row, col = (int(v) for v in sample["image_uint16"][0, 0])
            assert area[row : row + 24, col : col + 24].all()
            assert sample["label"].shape == (24, 24, 1)
    first = [data.position(0, i) for i in range(50)]
    assert first == [data.position(0, i) for i in range(50)]  # a pure function of the key
    assert first != [data.position(1, i) for i in range(50)]  # a new epoch, new windows
    assert torch.equal(data[0]["image_uint16"], data[(0, 0)]["image_uint16"])
    other_seed = RandomWindowDataset(store, frame, size=24, length=50, margin=8, seed=4)
    assert first != [other_seed.position(0, i) for i in range(50)]


def test_loader_workers_do_not_change_the_windows(store: SceneStore) -> None:
    data = RandomWindowDataset(store, index(), size=16, length=12, margin=4, seed=0)

    def corners(workers: int, epoch: int) -> torch.Tensor:
        sampler = EpochSampler(len(data))
        sampler.set_epoch(epoch)
        loader = DataLoader(data, batch_size=4, sampler=sampler, num_workers=workers)
        return torch.cat([batch["image_uint16"][:, 0, 0] for batch in loader])

    assert torch.equal(corners(0, 2), corners(2, 2))
    assert not torch.equal(corners(0, 1), corners(0, 2))


def test_distributed_ranks_draw_disjoint_keys() -> None:
    keys = []
    for rank in range(2):
        wrapper = DistributedSamplerWrapper(EpochSampler(10), num_replicas=2, rank=rank)
        wrapper.set_epoch(5)
        keys.append(list(wrapper))
    assert not set(keys[0]) & set(keys[1])
    assert set(keys[0]) | set(keys[1]) == {(5, i) for i in range(10)}


def test_impossible_windows_and_fixed_patch_stores_are_refused(store: SceneStore) -> None:
    with pytest.raises(GlacierInputError, match="window"):
        RandomWindowDataset(store, index(), size=90, length=4, margin=8)
    with pytest.raises(GlacierInputError, match="slices"):
        RandomWindowDataset(object(), index(), size=8, length=4)  # type: ignore[arg-type]
    with pytest.raises(GlacierInputError):
        RandomWindowDataset(store, index(), size=8, length=0)


def test_batched_reads_equal_stacked_samples(store: SceneStore) -> None:
    from glacier.data.loading import WindowDataset, collate_windows

    frame = index()
    edge = pd.DataFrame([("s", "train", HEIGHT - 8, WIDTH - 8, 32)], columns=frame.columns)
    windows = pd.concat([frame.head(3), edge])  # the last one hangs over the scene's corner
    plain, batched = WindowDataset(store, windows), WindowDataset(store, windows, batched=True)
    stacked = collate_windows(plain.__getitems__([0, 1, 2, 3]))
    read = collate_windows(batched.__getitems__([0, 1, 2, 3]))
    assert set(read) == set(stacked) == {"image_uint16", "label"}
    for key in read:
        assert read[key].dtype == stacked[key].dtype and torch.equal(read[key], stacked[key])
    assert int(read["label"][3, -1, -1, 0]) == 255 and int(read["image_uint16"][3, -1, -1, 0]) == 0
    random = RandomWindowDataset(store, frame, size=16, length=8, margin=4, seed=1, batched=True)
    loader = DataLoader(random, batch_size=4, sampler=EpochSampler(8), collate_fn=collate_windows)
    first = next(iter(loader))
    for i in range(4):
        assert torch.equal(first["image_uint16"][i], random[(0, i)]["image_uint16"])
