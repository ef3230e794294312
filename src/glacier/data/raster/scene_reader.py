"""Windowed reading of a scene assembled from one or more band files, plus derived channels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from glacier.data.contract import NodataRule
from glacier.data.raster.conversion import InputConversion
from glacier.data.raster.derived import DemOnGrid, compute_index, validate_derived
from glacier.data.raster.footprints import band_file_coverage, on_grid
from glacier.data.raster.headers import RasterHeader, check_scene_size, has_dataset_mask
from glacier.data.raster.windows import (
    EXACT_IN_FLOAT32,
    inside_and_finite,
    intersect,
    open_checked,
    output_array,
    read_as_integers,
    warped_onto,
)
from glacier.data.spec import SceneSpec
from glacier.errors import GlacierInputError


class SceneReader:
    """Read float32 windows of a scene: raw bands then derived channels, NaN where nodata.

    The first band file defines the grid (CRS, transform, size); other files are warped
    (bilinear, float32) onto it on the fly. A pixel is NaN where a band file does not reach it,
    where the file declares nodata (or ``nodata`` when it declares none), where its internal
    mask says so, and outside the scene: windows may extend past the edge (padding = nodata).
    Opening refuses, naming the file and the scene, a band file that is missing, unreadable,
    has another band count than its names, no CRS, a rotated transform, an unsupported dtype
    or no overlap with the grid, and a grid smaller than 2×2 pixels.

    Attributes:
        headers: Header of each band file, in order.
        coverage: Fraction of the grid each band file covers (1.0 for files on the grid).

    Args:
        scene: The scene's band files.
        derived: Derived channel names to append (see :mod:`glacier.data.raster.derived`).
        band_roles: Index role → band name mapping.
        dem: DEM file for ``elevation``/``slope``.
        nodata: The nodata rule: the value of files that declare none, all-zero pixels (the
            HKH release's tiles outside the Landsat scene; a single band at 0 never is), the
            pixels the scene's QA band flags (cloud, cloud shadow...). None: declared values only.
        conversion: Converts valid raw values (after the nodata rules, before derived
            channels); None keeps them.
    """

    def __init__(
        self,
        scene: SceneSpec,
        derived: Sequence[str] = (),
        band_roles: dict[str, str] | None = None,
        dem: Path | None = None,
        nodata: NodataRule | None = None,
        conversion: InputConversion | None = None,
    ) -> None:
        self.scene = scene
        self.nodata = nodata or NodataRule()
        qa = self.nodata.qa
        self._qa_band = (
            None if qa is None else qa.check_band(scene.band_names, f"scene {scene.id!r}")
        )
        self.conversion = conversion
        self.derived = list(derived)
        self.band_roles = band_roles or {}
        self._stack = ExitStack()
        try:
            self._open_sources(scene, self.nodata.value)
            self._dem = self._open_dem(dem)
            if self.derived:
                validate_derived(self.derived, scene.band_names, self.band_roles, dem is not None)
        except BaseException:
            self._stack.close()
            raise

    def _open_dem(self, dem: Path | None) -> DemOnGrid | None:
        """The DEM on the scene grid when ``elevation`` or ``slope`` is asked for."""
        if not {"elevation", "slope"} & set(self.derived):
            return None
        if dem is None:
            raise GlacierInputError("elevation/slope requested but data.dem is not set")
        resampled = DemOnGrid(
            dem, self.crs, self.transform, self.width, self.height, scene=self.scene.id
        )
        self._stack.callback(resampled.close)
        return resampled

    def _open_sources(self, scene: SceneSpec, nodata: float | None) -> None:
        """Open every band file; the first sets the grid, the others are warped onto it."""
        opened = []
        for source in scene.sources:
            dataset, header = open_checked(source, scene.id)
            opened.append((self._stack.enter_context(dataset), header))
        grid, header = opened[0]
        check_scene_size(header, f"scene '{scene.id}' band file")
        self.crs: CRS = grid.crs
        self.transform: Affine = grid.transform
        self.width: int = grid.width
        self.height: int = grid.height
        self.headers: list[RasterHeader] = [item[1] for item in opened]
        self.coverage: list[float] = [1.0]
        self._nodata: list[float | None] = [header.nodata if header.nodata is not None else nodata]
        self._readers: list[DatasetReader | WarpedVRT] = [grid]
        for dataset, header in opened[1:]:
            declared = header.nodata if header.nodata is not None else nodata
            reader = self._aligned(dataset, header, declared, scene.id)
            self._readers.append(reader)
            # a warp turns nodata and uncovered pixels into NaN itself
            self._nodata.append(declared if reader is dataset else None)
        # per-dataset masks of files read as they are (a warp applies them itself)
        self._masked = [r for r in self._readers if has_dataset_mask(r)]
        # integers with no nodata value or mask: no NaN inside the scene to look for
        self._never_nan = not self._masked and all(
            read_as_integers(reader) and nodata is None
            for reader, nodata in zip(self._readers, self._nodata, strict=True)
        )

    def _aligned(
        self, dataset: DatasetReader, header: RasterHeader, nodata: float | None, scene_id: str
    ) -> DatasetReader | WarpedVRT:
        """Return ``dataset`` itself when on the grid, else a bilinear float32 warp onto it.

        Grid pixels the file does not cover, and its nodata pixels, read as NaN.

        Raises:
            GlacierFileError: If the file does not overlap the scene at all.
        """
        covered = band_file_coverage(header, self.headers[0], scene_id)
        self.coverage.append(covered)
        if on_grid(header, self.headers[0]):
            return dataset
        vrt = warped_onto(dataset, header, self._readers[0], nodata)
        return self._stack.enter_context(vrt)

    @property
    def band_names(self) -> list[str]:
        """Channel names in read order: raw bands, then derived channels."""
        return [*self.scene.band_names, *self.derived]

    @property
    def integer_channels(self) -> list[bool]:
        """Per channel in :attr:`band_names` order: whether its valid values read are integers.

        True for the bands of a file on the grid with an 8/16-bit integer dtype and no
        conversion (read as they are stored); False for warped bands and derived channels.
        """
        flags = []
        for reader in self._readers:
            flags += [read_as_integers(reader) and self.conversion is None] * reader.count
        return flags + [False] * len(self.derived)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Scene bounds (left, bottom, right, top) in its CRS."""
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        return min(left, right), min(bottom, top), max(left, right), max(bottom, top)

    def read_raw(self, window: Window, out: np.ndarray | None = None) -> np.ndarray:
        """Read raw bands as float32 (C, h, w); nodata and outside-scene pixels are NaN.

        Args:
            window: Pixel window, possibly extending past the scene edge.
            out: Optional C-contiguous float32 (C, h, w) array to read into; reusing one
                across reads avoids touching fresh memory for every window.

        Returns:
            The raw band stack (``out`` when given).
        """
        height, width = int(window.height), int(window.width)
        out = output_array((len(self.scene.band_names), height, width), out)
        clipped = intersect(window, self.width, self.height)
        if clipped is None:
            out.fill(np.nan)
            return out
        inner, dr, dc = clipped
        inside = (int(inner.height), int(inner.width)) == (height, width)
        if not inside:  # the padding only: the read fills the rest
            rows, cols = slice(dr, dr + int(inner.height)), slice(dc, dc + int(inner.width))
            out[:, : rows.start], out[:, rows.stop :] = np.nan, np.nan
            out[:, rows, : cols.start], out[:, rows, cols.stop :] = np.nan, np.nan
        channel = 0
        for reader, nodata in zip(self._readers, self._nodata, strict=True):
            count = reader.count
            target = out[channel : channel + count, dr : dr + int(inner.height)]
            target = target[:, :, dc : dc + int(inner.width)]
            if inside and reader.dtypes[0] == "float32":  # straight into the result
                reader.read(window=inner, out=target)
            elif set(reader.dtypes) <= EXACT_IN_FLOAT32:
                # read in the file's own dtype and widen with numpy: GDAL's own conversion of a
                # pixel-interleaved file with GTIFF_DIRECT_IO costs 10x the read (same values)
                target[...] = reader.read(window=inner)
            else:
                target[...] = reader.read(window=inner, out_dtype=np.float32)
            if nodata is not None and not np.isnan(nodata):
                target[target == np.float32(nodata)] = np.nan
            if reader in self._masked:  # an internal mask (no nodata value) marks nodata
                target[:, reader.read_masks(1, window=inner) == 0] = np.nan
            channel += count
        return out

    def read(self, window: Window, out: np.ndarray | None = None) -> np.ndarray:
        """Read every channel (raw + derived) as float32 (C, h, w), NaN where nodata.

        A pixel that is nodata (or not finite) in any raw band is NaN in every channel.

        Args:
            window: Pixel window, possibly extending past the scene edge.
            out: Optional C-contiguous float32 (C, h, w) array to read into.

        Returns:
            The channel stack in :attr:`band_names` order (``out`` when given).
        """
        return self.read_with_mask(window, out)[0]

    def read_with_mask(
        self,
        window: Window,
        out: np.ndarray | None = None,
        raw_seen: Callable[[np.ndarray], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`read`, also returning the (h, w) mask of pixels finite in every channel.

        Args:
            window: Pixel window, possibly extending past the scene edge.
            out: Optional C-contiguous float32 (C, h, w) array to read into.
            raw_seen: Called with the raw bands (as :meth:`read_raw` returns them) before they
                are masked and converted, e.g. to take a preview's samples without a second read.

        Returns:
            The channel stack and its validity mask.
        """
        out = output_array((len(self.band_names), int(window.height), int(window.width)), out)
        raw_count = len(self.scene.band_names)
        raw = self.read_raw(window, out=out[:raw_count])
        if raw_seen is not None:
            raw_seen(raw)
        valid = inside_and_finite(raw, window, self.width, self.height, self._never_nan)
        if self.nodata.all_zero:
            valid &= ~NodataRule.zero_pixels([raw], axis=0)
        if self.nodata.qa is not None:
            valid &= ~self.nodata.qa.flagged(raw[self._qa_band])
        invalid = ~valid
        some_invalid = bool(invalid.any())
        if some_invalid:
            raw[:, invalid] = np.nan
        if self.conversion is not None:
            self.conversion.apply(raw)
        if not self.derived:
            return out, valid
        named = dict(zip(self.scene.band_names, raw, strict=True))
        for offset, name in enumerate(self.derived, start=raw_count):
            if name in ("elevation", "slope"):
                assert self._dem is not None
                layer = (
                    self._dem.read_elevation(window)
                    if name == "elevation"
                    else self._dem.read_slope(window)
                )
            else:
                layer = compute_index(name, named, self.band_roles)
            out[offset] = layer
            if some_invalid:
                out[offset][invalid] = np.nan
            valid &= np.isfinite(out[offset])
        return out, valid

    def close(self) -> None:
        """Close every open file."""
        self._stack.close()

    def __enter__(self) -> SceneReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_scene(scene: SceneSpec, spec: object) -> SceneReader:
    """Open ``scene`` with the derived channels and nodata rules of a :class:`DataSpec`.

    Args:
        scene: The scene to open.
        spec: The dataset spec (a :class:`glacier.data.spec.DataSpec`).

    Returns:
        An open reader (use it as a context manager).
    """
    from glacier.data.spec import DataSpec

    assert isinstance(spec, DataSpec)
    return SceneReader(scene, spec.derived, spec.band_roles, spec.dem, spec.nodata_rule)
