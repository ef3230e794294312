"""The published HKH glacier mapping patches (LILA) as a processed dataset.

Layout (https://lila.science/datasets/hkh-glacier-mapping): ``images/*.npy`` (512×512×15 float,
Landsat 7 bands + indices + SRTM elevation/slope), ``masks/*.npy`` (512×512×2: clean ice,
debris) and a GeoJSON of patch footprints. Patches are imported as slices (pixels that are 0 in
every channel — outside the HKH border — become nodata), then filtered, split and normalized by
the same postprocess stage as our own slices.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from glacier.data.filtering import SliceFilter
from glacier.data.masks import NODATA_LABEL
from glacier.data.pipeline import FORMAT_VERSION, Preprocessor, Splitter
from glacier.data.slicing import slice_record
from glacier.errors import GlacierFileNotFoundError, GlacierInputError
from glacier.utils.io import files_fingerprint, fingerprint, save_npy_atomic

log = logging.getLogger(__name__)

HKH_CHANNELS = (
    "blue",  # LE7 B1
    "green",  # B2
    "red",  # B3
    "nir",  # B4
    "swir1",  # B5
    "thermal_low",  # B6_VCID_1
    "thermal_high",  # B6_VCID_2
    "swir2",  # B7
    "pan",  # B8
    "bqa",  # quality bitmask
    "ndvi",
    "ndsi",
    "ndwi",
    "elevation",
    "slope",
)


class HkhPatches:
    """Description of an HKH patches folder (a ``data/`` config).

    Args:
        name: Dataset name (names the processed folder).
        root: Folder with ``images/`` and ``masks/``.
        classes: Names of the mask channels, in order.
        channels: Names of the image channels, in order.
        metadata: Patch footprint GeoJSON (needed by geographic splits); None = none.
        image_column: Metadata column naming each patch's image file.
        limit: Import only the first N patches (quick experiments); None = all.
        channel_sets: Named channel subsets for ``channels=NAME``.
    """

    def __init__(
        self,
        name: str,
        root: str,
        classes: Sequence[str] = ("clean_ice", "debris"),
        channels: Sequence[str] = HKH_CHANNELS,
        metadata: str | None = None,
        image_column: str = "img_slice",
        limit: int | None = None,
        channel_sets: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.name = name
        self.root = Path(root)
        self.classes = list(classes)
        self.channels = list(channels)
        self.metadata = Path(metadata) if metadata else None
        self.image_column = image_column
        self.limit = limit
        self.channel_sets = {k: list(v) for k, v in (channel_sets or {}).items()}
        self.slice_size: int | None = None

    def pairs(self) -> list[tuple[Path, Path]]:
        """Image/mask file pairs, matched by sorted order of names.

        Raises:
            GlacierFileNotFoundError: If ``images/`` or ``masks/`` is missing or empty.
            GlacierInputError: If the two folders hold different numbers of files.
        """
        images = sorted((self.root / "images").glob("*.npy"))
        masks = sorted((self.root / "masks").glob("*.npy"))
        if not images or not masks:
            raise GlacierFileNotFoundError(
                f"no HKH patches under {self.root}: expected images/*.npy and masks/*.npy"
            )
        if len(images) != len(masks):
            raise GlacierInputError(
                f"{self.root}: {len(images)} images but {len(masks)} masks; they must pair up"
            )
        pairs = list(zip(images, masks, strict=True))
        return pairs[: self.limit] if self.limit else pairs

    def describe(self) -> dict[str, Any]:
        """JSON description for fingerprints and checkpoints (one pseudo-scene of 15 bands)."""
        return {
            "name": self.name,
            "classes": self.classes,
            "scenes": [{"id": "hkh_tile", "sources": [{"path": None, "bands": self.channels}]}],
            "labels": [],
            "derived": [],
            "band_roles": {},
            "dem": None,
            "nodata": 0.0,
            "root": str(self.root),
            "metadata": str(self.metadata) if self.metadata else None,
            "limit": self.limit,
        }


def _footprints(spec: HkhPatches, images: list[Path]) -> list[tuple[float, ...]]:
    """Per-patch (x_min, y_min, x_max, y_max) in EPSG:4326, NaN without metadata."""
    nan = (float("nan"),) * 4
    if spec.metadata is None:
        return [nan] * len(images)
    if not spec.metadata.is_file():
        raise GlacierFileNotFoundError(f"HKH metadata file not found: {spec.metadata}")
    frame = gpd.read_file(spec.metadata)
    if spec.image_column not in frame.columns:
        raise GlacierInputError(
            f"{spec.metadata} has no column '{spec.image_column}' naming patch images; "
            f"columns: {list(frame.columns)}"
        )
    if frame.crs is not None:
        frame = frame.to_crs("EPSG:4326")
    bounds = {
        Path(str(name)).name: tuple(geometry.bounds)
        for name, geometry in zip(frame[spec.image_column], frame.geometry, strict=True)
    }
    return [bounds.get(path.name, nan) for path in images]


def import_patch(
    image_path: Path, mask_path: Path, spec: HkhPatches, out_dir: Path, index: int
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Convert one patch pair to a slice pair (NaN/255 where every channel is 0).

    Returns:
        The slice record (without footprint or statistics), the image and the label.

    Raises:
        GlacierInputError: Naming the file, for wrong shapes.
    """
    image = np.load(image_path).astype(np.float32)
    mask = np.load(mask_path)
    if image.ndim != 3 or image.shape[-1] != len(spec.channels):
        raise GlacierInputError(
            f"{image_path} has shape {image.shape}; expected (H, W, {len(spec.channels)})"
        )
    if mask.shape[:2] != image.shape[:2] or mask.shape[-1] != len(spec.classes):
        raise GlacierInputError(
            f"{mask_path} has shape {mask.shape}; expected {(*image.shape[:2], len(spec.classes))}"
        )
    nodata = (image == 0).all(axis=-1) | ~np.isfinite(image).all(axis=-1)
    image[nodata] = np.nan
    label = (mask > 0).astype(np.uint8)
    label[nodata] = NODATA_LABEL
    names = (f"slices/slice_hkh_img_{index}.npy", f"slices/slice_hkh_label_{index}.npy")
    save_npy_atomic(out_dir / names[0], image)
    save_npy_atomic(out_dir / names[1], label)
    record = {"scene": "hkh", "slice": index, "source": image_path.name}
    return record | {"image": names[0], "label": names[1], "size": image.shape[0]}, image, label


class PatchImporter(Preprocessor):
    """Import HKH patches, then filter, split and normalize them like our own slices.

    Args:
        data: The patches description.
        filter: Which slices to keep.
        split: How to assign train/dev/test (geographic splits need ``data.metadata``).
        processed_dir: Output root.
        progress: Show progress bars.
    """

    def __init__(
        self,
        data: HkhPatches,
        filter: SliceFilter,
        split: Splitter,
        processed_dir: str | Path,
        progress: bool = True,
    ) -> None:
        self.data = data  # type: ignore[assignment]
        self.patches = data
        self.filter = filter
        self.split = split
        self.processed_dir = Path(processed_dir)
        self.progress = progress
        self.n_jobs = 1

    def _import_key(self) -> str:
        pairs = self.patches.pairs()
        files = [p for pair in pairs for p in pair]
        meta = [self.patches.metadata] if self.patches.metadata else []
        return fingerprint(FORMAT_VERSION, self.patches.describe(), files_fingerprint(files + meta))

    def _postprocess_key(self) -> str:
        return fingerprint(
            FORMAT_VERSION, self._import_key(), self.filter.describe(), self.split.describe()
        )

    def run_import(self) -> list[dict[str, Any]]:
        """Convert every patch pair into slices (skipped when unchanged).

        Returns:
            One record per slice.
        """
        key = self._import_key()
        state = self._load_state("import", key)
        if state is not None:
            return list(state["payload"])
        self._state_path("import").unlink(missing_ok=True)
        pairs = self.patches.pairs()
        footprints = _footprints(self.patches, [image for image, _ in pairs])
        records = []
        for index, ((image_path, mask_path), bounds) in enumerate(
            zip(pairs, footprints, strict=True)
        ):
            record, image, label = import_patch(
                image_path, mask_path, self.patches, self.processed_dir, index
            )
            self.patches.slice_size = int(record["size"])
            box = dict(zip(("x_min", "y_min", "x_max", "y_max"), bounds, strict=True))
            record |= {"crs": "EPSG:4326", **box, **slice_record(image, label, self.data.classes)}
            records.append(record)
        self._save_state("import", key, records)
        log.info("import: %d HKH patches from %s", len(records), self.patches.root)
        return records

    def is_complete(self) -> bool:
        """Whether the processed dataset matches the current patches and settings."""
        return self._load_state("postprocess", self._postprocess_key()) is not None

    def run(self) -> dict[str, Any]:
        """Import, filter, split, normalize.

        Returns:
            The dataset description written to ``dataset.json``.
        """
        self.processed_dir.mkdir(parents=True, exist_ok=True)
        records = self.run_import()
        self.patches.slice_size = int(records[0]["size"]) if records else None
        return self.run_postprocess(records)
