"""The published HKH glacier mapping release (LILA), read as it is on disk.

``hkh_patches.tar.gz`` unpacks to ``glacier_data/``::

    raster_data/LE07_PPPRRR_YYYYMMDD.tif   35 tiles, 15 float32 bands (below), native UTM, 30 m,
                                           0 in every band outside the Landsat scene
    vector_data/hkh.shp, clean.shp, debris.shp   ICIMOD Glacier_2005 (``Glaciers`` column)
    slices/slice_{t}_img_{k:03}.npy        512×512×15 float32 H×W×C; NaN outside the HKH border
    slices/slice_{t}_mask_{k:03}.npy       512×512×3 uint8 0/1: all glaciers, clean ice, debris
    slices/slices.geojson                  footprints and statistics (with defects, below)
    splits/{train,dev,test}/               already imputed and z-scored copies: not raw data

``t`` is the tile's row in the predecessor's ``conf/masking_paths.yaml`` (:data:`RELEASE_TILES`),
``k`` the row-major index of the 512-px window at a 506-px step from the tile's top-left corner
(``view_as_windows``; partial windows dropped). ``slices.geojson`` declares EPSG:32643 for every
tile whatever its UTM zone, names files by absolute paths of the exporting machine, and its
boxes are 506 px wide and mirrored north–south within their tile (the predecessor's
``slice_polys``). Sources: krisrs1128/glacier_mapping (``glacier_mapping/data/slice.py``,
``conf/masking_paths.yaml``), stactools-packages/lila-hkh-glacier (branch feature/slices,
``tests/data-files/`` holds real files of the release); details in ``docs/hkh_release.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from glacier.data.contract import DEFAULT_FLAGS, Channel, DatasetContract, NodataRule, QaMask
from glacier.data.spec import DataSpec
from glacier.errors import GlacierFileNotFoundError, GlacierInputError

RELEASE_NODATA = NodataRule(value=None, all_zero=True)
"""The release's nodata: NaN outside the HKH border, 0 in every channel outside the scene."""
RELEASE_SLICES_DIR = "slices"
RELEASE_METADATA = f"{RELEASE_SLICES_DIR}/slices.geojson"
"""The release's slice folder and its footprints file (relative to ``glacier_data/``)."""

RELEASE_BANDS = (
    *("B1", "B2", "B3", "B4", "B5", "B6_VCID_1", "B6_VCID_2", "B7", "B8", "BQA"),
    *("ndvi", "ndsi", "ndwi", "elevation", "slope"),
)
# checked against the release's bands: NIR/SWIR ndwi and SWIR-minus-green ndsi, not the
# textbook green/NIR NDWI and green/SWIR NDSI
RELEASE_FORMULAS = {
    "ndvi": "(B4-B3)/(B4+B3)",
    "ndsi": "(B5-B2)/(B5+B2)",
    "ndwi": "(B4-B5)/(B4+B5)",
    "elevation": "elevation [m]",
    "slope": "slope [deg]",
}
RELEASE_ROLES = {"blue": "B1", "green": "B2", "red": "B3", "nir": "B4", "swir1": "B5"}
RELEASE_CLASSES = ("glacier", "clean_ice", "debris")  # the mask channels, in order
RELEASE_SOURCE_DTYPE = "float32"  # of the patches and of the raster_data/ tiles
RELEASE_CHANNEL_SETS = {
    "all": RELEASE_BANDS,
    # the predecessor's default input: bands without thermal/pan/QA, indices, DEM
    "predecessor": (
        "B1",
        "B2",
        "B3",
        "B4",
        "B5",
        "B7",
        "ndvi",
        "ndsi",
        "ndwi",
        "elevation",
        "slope",
    ),
    "landsat": ("B1", "B2", "B3", "B4", "B5", "B7"),
    "rgb": ("B3", "B2", "B1"),
}
# digital numbers 0-255 (thermal too), the QA bit field, indices at float16: the release's raw
# tiles in 23 instead of 60 bytes per pixel (checked exact while storing)
RELEASE_STORAGE_DTYPES = {
    **dict.fromkeys(("B1", "B2", "B3", "B4", "B5", "B6_VCID_1", "B6_VCID_2", "B7", "B8"), "uint8"),
    "BQA": "uint16",
    **dict.fromkeys(("ndvi", "ndsi", "ndwi", "slope"), "float16"),
}
PATCH_STEP_OVERLAP = 6  # windows of 512 px at a 506-px step
# slice_{t}_… → tile: the rows of the predecessor's conf/masking_paths.yaml
RELEASE_TILES = (
    *("LE07_149037_20041024", "LE07_149034_20060726", "LE07_146038_20060923"),
    *("LE07_147038_20040908", "LE07_143039_20081212", "LE07_146037_20071231"),
    *("LE07_149036_20071102", "LE07_150036_20050916", "LE07_151035_20060708"),
    *("LE07_148037_20071127", "LE07_151034_20050822", "LE07_139041_20051208"),
    *("LE07_148035_20061108", "LE07_137041_20060127", "LE07_148036_20050902"),
    *("LE07_145039_20011020", "LE07_149035_20070915", "LE07_136041_20060731"),
    *("LE07_136040_20060731", "LE07_135040_20081102", "LE07_146039_20051123"),
    *("LE07_146036_20090814", "LE07_140041_20071221", "LE07_150035_20050916"),
    *("LE07_147037_20060930", "LE07_150034_20050916", "LE07_147036_20060930"),
    *("LE07_152035_20060917", "LE07_152034_20060731", "LE07_147035_20050826"),
    *("LE07_134040_20070922", "LE07_153036_20060924", "LE07_144039_20011013"),
    *("LE07_152033_20060731", "LE07_138041_20071223"),
)
SLICE_NAME = re.compile(r"^slice_(\d+)_(img|mask)_(\d+)\.npy$")
TILE_NAME = re.compile(r"^LE07_(\d{3})(\d{3})_(\d{8})$")


@dataclass(frozen=True)
class ReleaseSlice:
    """One image/mask pair of ``slices/``.

    Attributes:
        tile: The tile's number ``t`` (its row in ``masking_paths.yaml``).
        k: The window index.
        image: The ``_img_`` file.
        mask: The ``_mask_`` file.
    """

    tile: int
    k: int
    image: Path
    mask: Path


def release_channels() -> tuple[Channel, ...]:
    """The 15 channels of the release: raw bands, then the derived ones read from the files.

    Every channel comes from float32 files (the patches, and the tiles they were cut from).
    """
    return tuple(
        Channel(
            name,
            "file" if name in RELEASE_FORMULAS else "band",
            RELEASE_FORMULAS.get(name),
            source_dtypes=(RELEASE_SOURCE_DTYPE,),
        )
        for name in RELEASE_BANDS
    )


def compact_release_channels(channels: Sequence[Channel]) -> tuple[Channel, ...]:
    """The release's channels as a training cache keeps them, converted once from float32.

    Digital numbers and QA bits take the integer dtypes of :data:`RELEASE_STORAGE_DTYPES`
    (the cache checks every valid value converts exactly); the indices, elevation and slope stay
    float32: their values are float32 numbers, which float16 would round.
    """
    compact = []
    for channel in channels:
        dtype = RELEASE_STORAGE_DTYPES.get(channel.name, channel.dtype)
        compact.append(replace(channel, dtype=dtype) if np.dtype(dtype).kind in "iu" else channel)
    return tuple(compact)


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
