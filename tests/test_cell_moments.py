"""Statistics from cell moments equal an exact computation over the training pixels, each once."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from glacier.data.contract import StorageGroup
from glacier.data.preprocess.moments import (
    CellMoments,
    MomentAccumulator,
    cell_edges,
    training_stats,
)
from glacier.data.preprocess.slicing import window_starts
from glacier.errors import GlacierInputError

GROUPS = [
    StorageGroup("uint8", (0, 2)),
    StorageGroup("float16", (1, 4)),
    StorageGroup("uint16", (3,)),
    StorageGroup("float32", (5,)),
]
CHANNELS = [f"c{i}" for i in range(6)]
FILL = {"uint8": 0, "uint16": 0, "float16": np.nan, "float32": np.nan}


def stored_scene(
    height: int, width: int, seed: int, constant: bool = False
) -> tuple[list[np.ndarray], np.ndarray]:
    """Stored arrays of a random scene (fill values at nodata) and its validity."""
    rng = np.random.default_rng(seed)
    valid = rng.random((height, width)) > 0.15
    valid[: height // 3, : width // 4] = False  # a nodata corner
    values = {
        "uint8": rng.integers(0, 256, (height, width, 2)),
        "float16": rng.normal(0.1, 0.3, (height, width, 2)),
        "uint16": rng.integers(0, 65536, (height, width, 1)),
        "float32": rng.normal(4000.0, 700.0, (height, width, 1)),
    }
    if constant:
        values = {
            "uint8": np.full((height, width, 2), 7),
            "float16": np.full((height, width, 2), 0.1),
        }
        values |= {
            "uint16": np.full((height, width, 1), 9),
            "float32": np.full((height, width, 1), 0.3),
        }
    parts = []
    for group in GROUPS:
        part = values[group.dtype].astype(group.dtype)
        part[~valid] = FILL[group.dtype]
        parts.append(part)
    return parts, valid


def read_planes(parts: list[np.ndarray], valid: np.ndarray, seed: int) -> np.ndarray:
    """(6, H, W) float32 planes as a strip is read: NaN at nodata, the stored integers elsewhere.

    The float channels hold other values (the 8-bit channels' moments must not use them).
    """
    planes = np.random.default_rng(seed).normal(size=(6, *valid.shape)).astype(np.float32)
    for group, part in zip(GROUPS, parts, strict=True):
        if group.dtype == "uint8":
            planes[list(group.channels)] = np.moveaxis(part, -1, 0)
    planes[:, ~valid] = np.nan
    return planes


def accumulate(
    parts: list[np.ndarray],
    valid: np.ndarray,
    size: int,
    overlap: int,
    planes: np.ndarray | None = None,
) -> tuple[CellMoments, pd.DataFrame]:
    """Moments strip by strip as slicing adds them, and every window of the grid."""
    height, width = valid.shape
    rows, cols = window_starts(height, size, overlap), window_starts(width, size, overlap)
    accumulator = MomentAccumulator(
        cell_edges(rows, size, height), cell_edges(cols, size, width), GROUPS
    )
    for index, top in enumerate(rows):  # each strip adds the rows up to the next strip's start
        stop = rows[index + 1] if index + 1 < len(rows) else height
        strip = None if planes is None else planes[:, top:stop]
        complete = bool(valid[top:stop].all())
        accumulator.add(top, [part[top:stop] for part in parts], valid[top:stop], strip, complete)
    windows = pd.DataFrame(
        [(r, c, size) for r in rows for c in cols], columns=["row_off", "col_off", "size"]
    )
    return accumulator.moments, windows.assign(scene="s")


def pixels_in(parts: list[np.ndarray], valid: np.ndarray, windows: pd.DataFrame) -> np.ndarray:
    """(N, 6) stored values of the valid pixels inside ``windows``, each pixel once."""
    area = np.zeros(valid.shape, dtype=bool)
    for row, col, size in windows[["row_off", "col_off", "size"]].itertuples(index=False):
        area[row : row + size, col : col + size] = True
    chosen = area & valid
    pixels = np.empty((int(chosen.sum()), 6))
    for group, part in zip(GROUPS, parts, strict=True):
        pixels[:, list(group.channels)] = part[chosen].astype(np.float64)
    return pixels


def exact_stats(pixels: np.ndarray) -> tuple[int, list[float], list[float]]:
    """Count, mean and (population) std per channel, in exact arithmetic, rounded once."""
    means, stds = [], []
    for values in pixels.T:
        exact = [Fraction(v) for v in values.tolist()]
        mean = sum(exact, Fraction(0)) / len(exact)
        means.append(float(mean))
        stds.append(float(sum((v - mean) ** 2 for v in exact) / len(exact)) ** 0.5)
    return len(pixels), means, stds


@pytest.mark.parametrize(("size", "overlap", "seed"), [(16, 4, 0), (20, 0, 1), (12, 5, 2)])
def test_statistics_of_any_window_set_match_an_exact_pass_over_its_pixels(
    size: int, overlap: int, seed: int
) -> None:
    parts, valid = stored_scene(57, 71, seed)
    moments, windows = accumulate(parts, valid, size, overlap)
    for subset in (windows, windows.sample(frac=0.4, random_state=seed), windows.iloc[[3]]):
        stats = training_stats({"s": moments}, subset, CHANNELS, GROUPS)
        count, means, stds = exact_stats(pixels_in(parts, valid, subset))
        assert stats.pixels == count
        mean, std = stats.of(CHANNELS)
        np.testing.assert_allclose(mean, means, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(std, stds, rtol=1e-11)


def test_integer_channels_are_exact_and_constant_channels_get_std_one() -> None:
    parts, valid = stored_scene(40, 40, 3, constant=True)
    moments, windows = accumulate(parts, valid, 16, 4)
    stats = training_stats({"s": moments}, windows, CHANNELS, GROUPS)
    mean, std = stats.of(CHANNELS)
    half, single = float(np.float16(0.1)), float(np.float32(0.3))
    assert mean == [7.0, half, 7.0, 9.0, half, single]  # the stored values themselves
    assert std == [1.0] * 6  # variance exactly 0 in every channel, not a rounding residue


def test_statistics_of_two_scenes_merge_as_one_set_of_pixels() -> None:
    (a, valid_a), (b, valid_b) = stored_scene(30, 50, 4), stored_scene(45, 33, 5)
    moments_a, windows_a = accumulate(a, valid_a, 16, 4)
    moments_b, windows_b = accumulate(b, valid_b, 16, 4)
    train_b = windows_b.sample(frac=0.5, random_state=0)
    windows = pd.concat([windows_a.assign(scene="a"), train_b.assign(scene="b")])
    stats = training_stats({"a": moments_a, "b": moments_b}, windows, CHANNELS, GROUPS)
    pixels = np.concatenate([pixels_in(a, valid_a, windows_a), pixels_in(b, valid_b, train_b)])
    count, means, stds = exact_stats(pixels)
    assert stats.pixels == count
    np.testing.assert_allclose(stats.of(CHANNELS)[0], means, rtol=1e-12)
    np.testing.assert_allclose(stats.of(CHANNELS)[1], stds, rtol=1e-10)


def test_a_float16_overflow_leaves_its_pixel_out_of_every_channel() -> None:
    parts, valid = stored_scene(32, 32, 6)
    row, col = np.argwhere(valid)[5]
    parts[1][row, col, 0] = np.inf  # a valid pixel whose index overflowed float16
    moments, windows = accumulate(parts, valid, 16, 0)
    stats = training_stats({"s": moments}, windows, CHANNELS, GROUPS)
    usable = valid.copy()
    usable[row, col] = False
    count, means, _ = exact_stats(pixels_in(parts, usable, windows))
    assert stats.pixels == count == int(valid.sum()) - 1
    np.testing.assert_allclose(stats.of(CHANNELS)[0], means, rtol=1e-13)


def test_moments_travel_through_text_exactly_and_check_their_windows() -> None:
    parts, valid = stored_scene(30, 30, 7)
    moments, windows = accumulate(parts, valid, 16, 4)
    again = CellMoments.from_text(moments.to_text())
    for name, array in vars(moments).items():
        np.testing.assert_array_equal(getattr(again, name), array)
    shifted = windows.assign(row_off=windows["row_off"] + 1)  # not the grid it was sliced with
    with pytest.raises(GlacierInputError, match="window grid"):
        again.covered(shifted)


@pytest.mark.parametrize("seed", [0, 8])
def test_8_bit_moments_from_the_planes_as_read_equal_those_of_the_stored_bytes(seed: int) -> None:
    parts, valid = stored_scene(300, 45, seed)  # cells taller than 256 rows: summed in blocks
    valid[150:] = True  # strips with every pixel valid, and strips with nodata
    for group, part in zip(GROUPS, parts, strict=True):
        part[valid & ~np.isfinite(part).all(axis=-1)] = 1 if group.dtype[0] == "u" else 0.5
    stored, _ = accumulate(parts, valid, 290, 3)
    from_planes, _ = accumulate(parts, valid, 290, 3, read_planes(parts, valid, seed))
    for name, array in vars(stored).items():
        np.testing.assert_array_equal(getattr(from_planes, name), array, err_msg=name)
    assert stored.count.sum() == valid.sum()
