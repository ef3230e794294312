"""Reading the published HKH release in place: finding it, pairing its slices, their statistics.

What the release is on disk (files, bands, formulas, tiles) is in
:mod:`glacier.data.hkh.release_facts`; :class:`HkhRelease` is the ``data=hkh_lila`` config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from glacier.data.contract import DEFAULT_FLAGS, DatasetContract, NodataRule, QaMask
from glacier.data.hkh.release_facts import (
    RELEASE_BANDS,
    RELEASE_CHANNEL_SETS,
    RELEASE_CLASSES,
    RELEASE_FORMULAS,
    RELEASE_NODATA,
    RELEASE_ROLES,
    RELEASE_SLICES_DIR,
    RELEASE_STORAGE_DTYPES,
    SLICE_NAME,
    TILE_NAME,
    ReleaseSlice,
    release_channels,
)
from glacier.data.spec import DataSpec
from glacier.errors import GlacierFileNotFoundError, GlacierInputError


def estimated_utm_epsg(tile_name: str) -> int:
    """The UTM zone (EPSG:326xx) of a release tile, estimated from its WRS-2 path and row.

    Calibrated on the tiles whose zones are known (149/036 and 148/036: 43, 134/040: 47,
    140/041: 45); near a zone edge it may be one off. Used only when ``raster_data/`` is
    missing and the tile grid cannot be read.
    """
    match = TILE_NAME.match(tile_name)
    if match is None:
        raise GlacierInputError(f"{tile_name!r} is not a release tile name LE07_PPPRRR_YYYYMMDD")
    path, row = int(match.group(1)), int(match.group(2))
    longitude = 76.34 + 1.545 * (148 - path) - 0.35 * (row - 36)
    return 32600 + int((longitude + 180) // 6) + 1


def find_release_root(root: Path) -> Path:
    """The ``glacier_data/`` folder given it or its parent; refuses ``splits/``.

    Raises:
        GlacierFileNotFoundError: If no ``slices/`` folder is found.
        GlacierInputError: If ``root`` is (inside) the release's normalized ``splits/``.
    """
    root = Path(root)
    if "splits" in root.parts:
        raise GlacierInputError(
            f"data.root={root} is inside the release's splits/, which holds imputed and "
            "z-scored copies (masks [clean, debris, background]), not raw data; point "
            "data.root at glacier_data/: its slices/ are read in place and normalized by the "
            "model"
        )
    for candidate in (root, root / "glacier_data"):
        if (candidate / RELEASE_SLICES_DIR).is_dir():
            return candidate
    raise GlacierFileNotFoundError(
        f"data.root={root}: no slices/ folder here or in {root / 'glacier_data'}; give the "
        "glacier_data/ folder of the unpacked hkh_patches.tar.gz"
    )


def pair_slices(slices_dir: Path, limit: int | None = None) -> list[ReleaseSlice]:
    """Pair ``_img_``/``_mask_`` files by name, sorted by tile and window.

    Raises:
        GlacierFileNotFoundError: If there is no slice.
        GlacierInputError: Naming files that have no partner.
    """
    found: dict[tuple[int, int], dict[str, Path]] = {}
    for path in slices_dir.iterdir():
        match = SLICE_NAME.match(path.name)
        if match:
            tile, kind, k = int(match.group(1)), match.group(2), int(match.group(3))
            found.setdefault((tile, k), {})[kind] = path
    if not found:
        raise GlacierFileNotFoundError(f"no slice_*_img_*.npy files in {slices_dir}")
    lonely = [next(iter(p.values())).name for p in found.values() if len(p) != 2]
    if lonely:
        raise GlacierInputError(
            f"{len(lonely)} slice file(s) in {slices_dir} have no image/mask partner, e.g. "
            f"{lonely[:3]}; the download may be incomplete"
        )
    pairs = [ReleaseSlice(t, k, p["img"], p["mask"]) for (t, k), p in sorted(found.items())]
    return pairs[:limit] if limit else pairs


def valid_pixels(image: np.ndarray) -> np.ndarray:
    """(H, W) pixels of a release slice (H, W, C) that hold data under :data:`RELEASE_NODATA`."""
    valid: np.ndarray = np.isfinite(image).all(axis=-1) & ~NodataRule.zero_pixels([image])
    return valid


def slice_statistics(
    image: np.ndarray, mask: np.ndarray, classes: Sequence[str]
) -> dict[str, float]:
    """Nodata fraction, class fractions of valid pixels and mean of valid values of one pair.

    A pixel is nodata when any channel is NaN (outside the HKH border) or every channel is 0
    (outside the Landsat scene); never because a single channel is 0.
    """
    valid = valid_pixels(image)
    count = int(valid.sum())
    record = {"nodata_frac": 1.0 - count / valid.size}
    record["img_mean"] = float(image[valid].mean(dtype=np.float64)) if count else 0.0
    for index, name in enumerate(classes):
        record[f"mask_mean_{name}"] = float((mask[..., index][valid] == 1).mean()) if count else 0.0
    return record


class HkhRelease:
    """The HKH release as a ``data/`` config: slices read in place, raw values.

    Args:
        name: Dataset name (names the processed folder holding the index and contract).
        root: The ``glacier_data/`` folder (or its parent).
        channel_sets: Named channel subsets for ``channels=NAME`` (default: all, predecessor,
            landsat, rgb).
        stats_max_slices: Training slices read for normalization statistics (a seeded sample;
            all of them when None). Each slice is 15.7 MB: all ~5,000 would read ~80 GB.
        limit: Use only the first N slice pairs (quick experiments); None = all.
        seed: Seed of the statistics sample.
        qa_band: ``BQA`` to treat pixels the release's QA band flags (cloud, cloud shadow) as
            nodata, in training and in prediction with the checkpoint (None: no QA mask).
        qa_mask: Conditions that flag a pixel (see :class:`glacier.data.contract.QaMask`).
        qa_confidence: Lowest QA confidence that flags.
    """

    def __init__(
        self,
        name: str,
        root: str,
        channel_sets: Mapping[str, Sequence[str]] | None = None,
        stats_max_slices: int | None = 1000,
        limit: int | None = None,
        seed: int = 0,
        qa_band: str | None = None,
        qa_mask: Sequence[str] = DEFAULT_FLAGS,
        qa_confidence: str = "medium",
    ) -> None:
        self.name = name
        self.qa = None if qa_band is None else QaMask(str(qa_band), tuple(qa_mask), qa_confidence)
        if self.qa is not None:
            self.qa.check_band(RELEASE_BANDS, f"data '{name}'")
        self.root = find_release_root(Path(root))
        sets = RELEASE_CHANNEL_SETS if channel_sets is None else channel_sets
        self.channel_sets = {k: tuple(v) for k, v in sets.items()}
        self.stats_max_slices = stats_max_slices
        self.limit = limit
        self.seed = seed
        self.classes = RELEASE_CLASSES

    @property
    def slices_dir(self) -> Path:
        """The release's ``slices/`` folder."""
        return self.root / RELEASE_SLICES_DIR

    def slices(self) -> list[ReleaseSlice]:
        """Every image/mask pair (or the first ``limit``)."""
        return pair_slices(self.slices_dir, self.limit)

    def slice_size(self, first: ReleaseSlice) -> int:
        """Window size, read from the first image's header (512 in the release).

        Raises:
            GlacierInputError: If it is not an (S, S, 15) float array.
        """
        image = np.load(first.image, mmap_mode="r")
        if image.ndim != 3 or image.shape[0] != image.shape[1] or image.shape[2] != 15:
            raise GlacierInputError(
                f"{first.image} has shape {image.shape}: a release slice is (512, 512, 15) H×W×C"
            )
        return int(image.shape[0])

    def contract(self, slice_size: int) -> DatasetContract:
        """The contract of the release (without statistics)."""
        return DatasetContract(
            name=self.name,
            channels=release_channels(),
            classes=self.classes,
            band_layout=(RELEASE_BANDS,),
            band_roles=RELEASE_ROLES,
            nodata=replace(RELEASE_NODATA, qa=self.qa),
            slice_size=slice_size,
            channel_sets=self.channel_sets,
        )

    def describe(self) -> dict[str, Any]:
        """Settings for fingerprints."""
        described: dict[str, Any] = {
            "root": str(self.root.resolve()),
            "limit": self.limit,
            "name": self.name,
        }
        if self.qa is not None:  # without a QA mask, fingerprints stay those of earlier indexes
            described["qa"] = vars(self.qa)
        return described


def release_tiles_spec(
    root: str,
    name: str = "hkh_2005",
    tiles: str = "raster_data/*.tif",
    channel_sets: Mapping[str, Sequence[str]] | None = None,
    formulas: Mapping[str, str] | None = None,
    **spec: Any,
) -> DataSpec:
    """A data config of raw tiles laid out like the release's (15 bands, derived ones in-file).

    Bands, formulas, index roles, the all-zero nodata rule, compact storage dtypes and channel
    sets are the release's (one home: this module); the config gives the rest.

    Args:
        root: The data folder (``glacier_data/`` for the release's own tiles).
        name: Dataset name.
        tiles: Glob of the tiles, relative to ``root``.
        channel_sets: Named channel subsets (default: the release's).
        formulas: Formulas that differ from the release's (tiles exported by another script,
            e.g. the Earth Engine script whose ndsi is ``(B2-B5)/(B2+B5)``).
        **spec: Remaining :class:`DataSpec` arguments (classes, labels, slicing, ...).

    Returns:
        The data config.
    """
    return DataSpec(
        name=name,
        root=root,
        scene_glob=str(Path(root) / tiles),
        bands=list(RELEASE_BANDS),
        formulas={**RELEASE_FORMULAS, **(formulas or {})},
        band_roles=dict(RELEASE_ROLES),
        nodata_all_zero=True,
        storage_dtypes=dict(RELEASE_STORAGE_DTYPES),
        channel_sets=channel_sets or {k: list(v) for k, v in RELEASE_CHANNEL_SETS.items()},
        **spec,
    )
