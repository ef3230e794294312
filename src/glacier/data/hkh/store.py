"""The HKH release read in place: an index of its slices, filter/split/statistics, windows.

Nothing of the ~111 GB is copied: the processed folder holds the index (``splits.csv`` with each
slice's file names), the corrected footprints (``slices/slices.geojson``) and the contract.
Building the index reads every pair once (nodata and class fractions over valid pixels); it is
cached and redone only when the files change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from glacier.data.hkh.release import valid_pixels
from glacier.data.store import read_npy_header
from glacier.utils.progress import progress_bar

log = logging.getLogger(__name__)
GROUP_KEY = "image_float32"  # the release stores all 15 channels as float32


class ReleaseStore:
    """Windows of the release's slice files, looked up by (tile, row, column).

    Args:
        root: The ``glacier_data/`` folder.
        index: Index rows with ``scene, row_off, col_off, image, mask`` (paths under ``root``).
        stats_max_slices: Training slices read for statistics (seeded sample); None = all.
        seed: Seed of that sample.
    """

    def __init__(
        self,
        root: Path,
        index: pd.DataFrame,
        stats_max_slices: int | None = None,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        self.files = {
            (str(scene), int(row), int(col)): (str(image), str(mask))
            for scene, row, col, image, mask in index[
                ["scene", "row_off", "col_off", "image", "mask"]
            ].itertuples(index=False)
        }
        self.stats_max_slices = stats_max_slices
        self.seed = seed

    @property
    def group_keys(self) -> list[str]:
        """Batch key of the one image array per slice."""
        return [GROUP_KEY]

    def window(
        self, scene_id: str, row: int, col: int, size: int
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """The (S, S, 15) float32 image and (S, S, 3) uint8 mask of one slice, as stored.

        Nodata (NaN, all-zero pixels) is marked on the device by the contract's rule.
        """
        image, mask = self.files[(scene_id, row, col)]
        return [np.load(self.root / image)], np.load(self.root / mask)

    def window_into(
        self,
        scene_id: str,
        row: int,
        col: int,
        size: int,
        images: list[np.ndarray],
        label: np.ndarray,
    ) -> None:
        """:meth:`window`, copied straight from the files into ``images[0]`` and ``label``."""
        image, mask = self.files[(scene_id, row, col)]
        read_npy_into(self.root / image, images[0])
        read_npy_into(self.root / mask, label)

    def missing(self, scene_ids: Sequence[str]) -> list[Path]:
        """Slice files of these tiles that do not exist."""
        wanted = set(scene_ids)
        paths = [
            self.root / name
            for (scene, _, _), pair in self.files.items()
            if scene in wanted
            for name in pair
        ]
        return [path for path in paths if not path.is_file()]

    def training_pixels(self, train: pd.DataFrame, progress: bool) -> Iterator[np.ndarray]:
        """Valid pixels of (a seeded sample of) the training slices, one slice at a time."""
        rows = train
        if self.stats_max_slices is not None and len(train) > self.stats_max_slices:
            rows = train.sample(self.stats_max_slices, random_state=self.seed)
            log.info("statistics from %d of %d training slices", len(rows), len(train))
        for image_name in progress_bar(rows["image"], len(rows), "stats", progress):
            image = np.load(self.root / str(image_name))
            valid = valid_pixels(image)
            yield image[valid].astype(np.float64)


def read_npy_into(path: Path, out: np.ndarray) -> None:
    """Read a ``.npy`` file's data straight into ``out`` (one copy; same shape and dtype).

    Raises:
        ValueError: If the file holds another shape, dtype or order, or is truncated.
    """
    with open(path, "rb") as handle:
        shape, fortran, dtype = read_npy_header(handle)
        if shape != out.shape or dtype != out.dtype or fortran or not out.flags.c_contiguous:
            raise ValueError(
                f"{path} holds {shape} {dtype}, the batch expects {out.shape} {out.dtype}"
            )
        if handle.readinto(out.data.cast("B")) != out.nbytes:
            raise ValueError(f"{path} is truncated")
