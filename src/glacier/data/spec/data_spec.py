"""Typed description of a dataset (one Hydra ``data/`` config): scenes, bands, labels, rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from glacier.data.contract import BACKGROUND, DEFAULT_FLAGS, DERIVED, NodataRule, QaMask
from glacier.data.spec.scene_config import (
    parse_date_filter,
    parse_labels,
    parse_scenes,
)
from glacier.errors import (
    GlacierInputError,
    require_non_negative,
    require_range,
)

DERIVED_CHANNELS = tuple(DERIVED)


def _check_values(
    name: str, classes: Sequence[str], slice_size: int, overlap: int, derived: Sequence[str]
) -> None:
    """Classes, slicing and derived-channel names of a data config, before anything is read."""
    if not classes:
        raise GlacierInputError(f"data '{name}': data.classes is empty")
    if len(set(classes)) != len(classes) or BACKGROUND in classes:
        raise GlacierInputError(f"data.classes must be unique and not 'background': {classes}")
    require_range("data.slice_size", slice_size, 2, integer=True)
    require_non_negative("data.overlap", overlap)
    if not 0 <= overlap < slice_size:
        raise GlacierInputError(f"need 0 <= data.overlap < data.slice_size, got {overlap}")
    unknown = [d for d in derived if d not in DERIVED_CHANNELS]
    if unknown:
        raise GlacierInputError(
            f"unknown derived channel(s) {unknown} in data.derived; known: {DERIVED_CHANNELS}"
        )


class DataSpec:
    """Everything preprocessing needs to know about one dataset (a ``data/`` config).

    Args:
        name: Dataset name; names the processed folder.
        classes: Class names, one mask channel each (background is implicit).
        labels: Polygon sources (see :class:`LabelSource` fields).
        scenes: Explicit scenes: ``{id, sources: [{path, bands}]}``.
        scene_glob: Alternatively, a glob of single-file scenes, each with ``bands``.
        bands: Band names of every file matched by ``scene_glob``.
        derived: Derived channels appended to the raw bands (``ndvi``, ``ndwi``, ``ndsi``,
            ``elevation``, ``slope``).
        band_roles: Maps index roles (``red``, ``green``, ``nir``, ``swir1``) to band names.
        dem: DEM GeoTIFF for ``elevation``/``slope``, resampled to each scene grid.
        nodata: Nodata value for band files that declare none.
        date_filter: Keep polygons within a year range (see :class:`DateFilter`).
        region: Polygon file of the valid area; pixels outside become nodata.
        region_layer: The layer of ``region`` holding the area (required when it has several).
        slice_size: Tile edge in pixels.
        overlap: Pixels shared by neighbouring tiles.
        channel_sets: Named channel subsets users can select with ``channels=NAME``.
        formulas: Bands that are derived channels read from the files, with their formula in
            band names (``{ndsi: (B5-B2)/(B5+B2)}``, ``{elevation: elevation [m]}``): a checkpoint
            refuses scenes whose channel of that name means something else.
        storage_dtypes: Narrower dtypes to store bands in (``{B1: uint8}`` for digital numbers
            kept as float32 in the files; checked exact on every valid pixel).
        nodata_all_zero: A pixel that is 0 in every band is nodata (never one band at 0).
        qa_band: A Landsat QA band among the scene's bands (``BQA``): pixels it flags become
            nodata (see :mod:`glacier.data.contract.qa`).
        qa_mask: Conditions that flag a pixel (``fill``, ``cloud``, ``cloud_shadow``,
            ``snow_ice``).
        qa_confidence: Lowest QA confidence that flags (``low``, ``medium``, ``high``).
        root: The data folder the other paths of the config are written relative to (through
            ``${data.root}``); not read otherwise.
    """

    def __init__(
        self,
        name: str,
        classes: Sequence[str],
        labels: Sequence[Mapping[str, Any]],
        scenes: Sequence[Mapping[str, Any]] | None = None,
        scene_glob: str | None = None,
        bands: Sequence[str] | None = None,
        derived: Sequence[str] = (),
        band_roles: Mapping[str, str] | None = None,
        dem: str | None = None,
        nodata: float | None = None,
        date_filter: Mapping[str, Any] | None = None,
        region: str | None = None,
        slice_size: int = 512,
        overlap: int = 32,
        channel_sets: Mapping[str, Sequence[str]] | None = None,
        formulas: Mapping[str, str] | None = None,
        storage_dtypes: Mapping[str, str] | None = None,
        nodata_all_zero: bool = False,
        qa_band: str | None = None,
        qa_mask: Sequence[str] = DEFAULT_FLAGS,
        qa_confidence: str = "medium",
        root: str | None = None,
        region_layer: str | None = None,
    ) -> None:
        _check_values(name, classes, slice_size, overlap, derived)
        self.name = name
        self.classes = [str(c) for c in classes]
        self.labels = parse_labels(labels, self.classes)
        self.scenes = parse_scenes(scenes, scene_glob, bands)
        self.derived = [str(d) for d in derived]
        self.band_roles = dict(band_roles or {})
        self.dem = Path(dem) if dem else None
        self.nodata = nodata
        self.date_filter = parse_date_filter(date_filter) if date_filter else None
        self.region = Path(region) if region else None
        self.region_layer = str(region_layer) if region_layer is not None else None
        self.slice_size = int(slice_size)
        self.overlap = int(overlap)
        self.formulas = {str(k): str(v) for k, v in (formulas or {}).items()}
        self.storage_dtypes = {str(k): str(v) for k, v in (storage_dtypes or {}).items()}
        self.nodata_all_zero = bool(nodata_all_zero)
        self.qa = None if qa_band is None else QaMask(str(qa_band), tuple(qa_mask), qa_confidence)
        if self.qa is not None:
            self.qa.check_band(self.scenes[0].band_names, f"data '{name}'")
        self.root = Path(root) if root else None
        self.channel_sets = {k: list(v) for k, v in (channel_sets or {}).items()}
        self._check_channels()

    def _check_channels(self) -> None:
        """Formulas, storage dtypes, derived channels and channel sets against the bands."""
        for key, names in (("formulas", self.formulas), ("storage_dtypes", self.storage_dtypes)):
            unknown_bands = [b for b in names if b not in self.scenes[0].band_names]
            if unknown_bands:
                raise GlacierInputError(
                    f"data.{key} names {unknown_bands}, which are not bands of the scenes: "
                    f"{self.scenes[0].band_names}"
                )
        clashes = [d for d in self.derived if d in self.scenes[0].band_names]
        if clashes:
            raise GlacierInputError(
                f"data.derived computes {clashes}, which the scene files already hold as bands; "
                "declare their formulas in data.formulas instead"
            )
        for set_name, members in self.channel_sets.items():
            unknown_channels = [c for c in members if c not in self.channels]
            if unknown_channels:
                raise GlacierInputError(
                    f"data.channel_sets.{set_name} names {unknown_channels}, which are not "
                    f"channels of this dataset: {self.channels}"
                )
        if ("elevation" in self.derived or "slope" in self.derived) and self.dem is None:
            raise GlacierInputError("data.derived asks for elevation/slope but data.dem is not set")

    @property
    def nodata_rule(self) -> NodataRule:
        """The nodata rule of these scenes (declared value, all-zero pixels, QA flags)."""
        return NodataRule(self.nodata, self.nodata_all_zero, self.qa)

    @property
    def channels(self) -> list[str]:
        """Stored channel names: raw bands of the first scene, then derived channels."""
        return [*self.scenes[0].band_names, *self.derived]

    def describe(self) -> dict[str, Any]:
        """Return a JSON-serialisable description (used for stage fingerprints and checkpoints)."""
        return {
            "name": self.name,
            "classes": self.classes,
            "scenes": [
                {
                    "id": s.id,
                    "sources": [{"path": str(b.path), "bands": b.bands} for b in s.sources],
                }
                for s in self.scenes
            ],
            "labels": [vars(label) | {"path": str(label.path)} for label in self.labels],
            "derived": self.derived,
            "band_roles": self.band_roles,
            "dem": str(self.dem) if self.dem else None,
            "nodata": self.nodata,
            "date_filter": vars(self.date_filter) if self.date_filter else None,
            "region": str(self.region) if self.region else None,
            "region_layer": self.region_layer,
            "slice_size": self.slice_size,
            "overlap": self.overlap,
        }
