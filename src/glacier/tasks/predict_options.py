"""``glacier predict``'s settings: the composed config turned into one typed object, checked once.

:meth:`PredictOptions.from_config` is the only place that reads the ``predict`` config; every
range and choice is checked there, before anything is loaded or written, and the rest of the
task (and the library under it) is handed typed values. The data config stays a config node
until the task needs its scenes (:meth:`PredictOptions.build_data`), as it did before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from glacier.data.labels import InventorySettings
from glacier.data.raster import InputConversion
from glacier.data.spec import DataSpec
from glacier.errors import (
    GlacierConfigError,
    require_choice,
    require_non_negative,
    require_positive,
    require_range,
)
from glacier.inference.engine import PROBABILITY_FORMATS
from glacier.models import MEASURES, Passes
from glacier.tasks.config import build_as

AS_IS = "as_is"
DATA_HINT = (
    "glacier predict maps the scenes of a scene data config (data=everest, data=hkh_2005...) "
    "or input= files"
)


def _plain(value: Any) -> Any:
    """A config value as plain Python (lists and dicts instead of OmegaConf containers)."""
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def input_conversion(value: object) -> InputConversion | None:
    """``input_conversion=`` as an :class:`InputConversion` (None when not stated).

    Raises:
        GlacierConfigError: For anything but null, ``as_is`` or ``{scale, offset}``.
    """
    if value is None:
        return None
    if value == AS_IS:
        return InputConversion()
    plain = _plain(value)
    if isinstance(plain, Mapping) and set(plain) <= {"scale", "offset"}:
        scale = require_range("input_conversion.scale", plain.get("scale", 1.0))
        offset = require_range("input_conversion.offset", plain.get("offset", 0.0))
        return InputConversion(float(scale), float(offset))
    raise GlacierConfigError(
        f"input_conversion={value!r}: use null, as_is, or {{scale: S, offset: O}}"
    )


def uncertainty_choice(value: Any) -> tuple[str, ...] | None:
    """The ``uncertainty=`` setting: None for ``auto``, the measures to write otherwise.

    Raises:
        GlacierConfigError: For a name that is no measure.
    """
    if value is None or str(value) == "none":
        return ()
    if str(value) == "auto":
        return None
    names = (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)
    for name in names:
        require_choice("uncertainty", name, [*MEASURES, "auto", "none"])
    return names


def check_settings(cfg: DictConfig) -> None:
    """Refuse impossible settings before anything is loaded or written.

    Raises:
        GlacierConfigError: Naming the key and the bound.
    """
    require_range("tile_size", cfg.tile_size, 32, integer=True)
    require_range("overlap", cfg.overlap, 0, cfg.tile_size, integer=True, high_inclusive=False)
    require_non_negative("mc_samples", cfg.mc_samples)
    require_range("tta", cfg.tta, 1, 8, integer=True, high_inclusive=True)
    require_non_negative("min_area_km2", cfg.min_area_km2, integer=False)
    require_non_negative("simplify_m", cfg.simplify_m, integer=False)
    require_choice("probabilities", cfg.probabilities, PROBABILITY_FORMATS)
    measures = uncertainty_choice(cfg.uncertainty)
    Passes(views=int(cfg.tta), mc_samples=int(cfg.mc_samples)).check(measures or [])
    if str(cfg.temperature) != "checkpoint":
        require_range("temperature", cfg.temperature, 0, None, integer=False, low_inclusive=False)
    require_positive("num_shards", cfg.num_shards)
    require_range("max_outside_share", cfg.max_outside_share, 0, 1)
    input_conversion(cfg.input_conversion)
    if cfg.shard is not None:
        require_range("shard", cfg.shard, 0, cfg.num_shards, integer=True, high_inclusive=False)
    out_dir = Path(str(cfg.out_dir))
    if out_dir.exists() and not out_dir.is_dir():
        raise GlacierConfigError(f"out_dir={out_dir} is a file; give a folder for the maps")


@dataclass(frozen=True)
class InventoryOptions:
    """``inventory=`` and how to read it (``per_glacier/``), for predict and change.

    Attributes:
        source: None (no per-glacier answers), ``data`` (the data config's outlines) or a file.
        id_column: Unique glacier id.
        keep: Further inventory columns copied to the tables.
        area_column: The inventory's area in km² (None: measured).
        date_column: The outline's date (None: none).
        layer: Layer of a multi-layer inventory file.
        buffer_m: Mapped pixels this far outside an outline still count for it.
    """

    source: str | None
    id_column: str = "RGIId"
    keep: tuple[str, ...] = ()
    area_column: str | None = None
    date_column: str | None = None
    layer: str | None = None
    buffer_m: float = 0.0

    @classmethod
    def from_config(cls, cfg: DictConfig) -> InventoryOptions:
        """``cfg.inventory`` and ``cfg.per_glacier``."""
        source = cfg.get("inventory")
        if source is None:
            return cls(None)
        options = cfg.per_glacier
        return cls(
            source=str(source),
            id_column=str(options.id_column),
            keep=tuple(str(c) for c in options.keep),
            area_column=None if options.area_column is None else str(options.area_column),
            date_column=None if options.date_column is None else str(options.date_column),
            layer=options.layer,
            buffer_m=float(options.buffer_m),
        )

    def settings(self, data: DataSpec | None) -> InventorySettings | None:
        """The inventory to read (None without ``inventory=``).

        Raises:
            GlacierConfigError: For ``inventory=data`` without a data config's outlines.
        """
        if self.source is None:
            return None
        if self.source == "data":
            if data is None or not data.labels:
                raise GlacierConfigError("inventory=data needs a data config with outline files")
            path, layer = data.labels[0].path, data.labels[0].layer
        else:
            path, layer = Path(self.source), self.layer
        return InventorySettings(
            path=Path(path),
            id_column=self.id_column,
            keep=self.keep,
            area_column=self.area_column,
            date_column=self.date_column,
            layer=layer,
            buffer_m=self.buffer_m,
        )


@dataclass(frozen=True)
class PredictOptions:
    """Every setting of one ``glacier predict`` call (the keys of ``configs/predict.yaml``).

    Attributes:
        ckpt_path: A checkpoint, a training or sweep folder, or a list of checkpoints.
        checkpoint: Which checkpoint of a folder (``auto``, ``best``, ``last``).
        inputs: ``input=`` files or globs (None: the data config's scenes).
        data_config: The data config node (built only when its scenes or outlines are used).
        labels: Reference outlines: None, ``data`` or a file.
        label_class: The class a ``labels=`` file holds.
        label_layer: The layer of a multi-layer ``labels=`` file.
        inventory: Per-glacier answers (``inventory=`` and ``per_glacier/``).
        conversion: ``input_conversion=`` (None: not stated).
        conversion_text: How it was given (for the fingerprint; None: not stated).
        max_outside_share: Share of a band's values allowed outside the training range.
        dem: DEM GeoTIFF for elevation/slope of ``input=`` scenes.
        out_dir: Where the maps go.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        precision: ``auto``, ``fp32``, ``bf16``, ``fp16``.
        tile_size: Tile edge in pixels.
        overlap: Tile overlap in pixels.
        batch_size: Tiles per forward pass (``auto`` or a number).
        readers: Reader threads (``auto`` or a number).
        mc_samples: MC-dropout passes (0: none).
        tta: Dihedral views per tile.
        seed: Seeds the MC-dropout draws.
        uncertainty: Measures to write (None: ``auto``; empty: none).
        temperature: A temperature for every pass (None: the checkpoint's own; an ensemble of
            a cross-validation sweep, the calibration its folds chose).
        probabilities: ``percent`` or ``float32``.
        cog: Cloud-Optimized GeoTIFFs.
        compile: ``torch.compile`` the network for deterministic passes.
        min_area_km2: Smallest polygon kept.
        simplify_m: Polygon simplification tolerance.
        overwrite: Redo scenes already mapped with the same settings.
        progress: A progress bar over the tiles.
        shard: This shard (None: every scene).
        num_shards: Shards of the scene list.
    """

    ckpt_path: str | list[str]
    checkpoint: str
    inputs: str | list[str] | None
    data_config: Any
    labels: str | None
    label_class: str | None
    label_layer: str | None
    inventory: InventoryOptions
    conversion: InputConversion | None
    conversion_text: str | None
    max_outside_share: float
    dem: Path | None
    out_dir: Path
    device: str
    precision: str
    tile_size: int
    overlap: int
    batch_size: int | str
    readers: int | str
    mc_samples: int
    tta: int
    seed: int
    uncertainty: tuple[str, ...] | None
    temperature: float | None
    probabilities: str
    cog: bool
    compile: bool
    min_area_km2: float
    simplify_m: float
    overwrite: bool
    progress: bool
    shard: int | None
    num_shards: int

    @classmethod
    def from_config(cls, cfg: DictConfig) -> PredictOptions:
        """Check a composed ``predict`` config (:func:`check_settings`) and type it.

        Raises:
            GlacierConfigError: Naming the first key out of its bounds.
        """
        check_settings(cfg)
        conversion = cfg.get("input_conversion")
        temperature = None if str(cfg.temperature) == "checkpoint" else float(cfg.temperature)
        return cls(
            ckpt_path=_plain(cfg.ckpt_path),
            checkpoint=str(cfg.checkpoint),
            inputs=_plain(cfg.input),
            data_config=cfg.data,
            labels=None if cfg.labels is None else str(cfg.labels),
            label_class=cfg.get("label_class"),
            label_layer=cfg.get("label_layer"),
            inventory=InventoryOptions.from_config(cfg),
            conversion=input_conversion(cfg.input_conversion),
            conversion_text=None if conversion is None else str(conversion),
            max_outside_share=float(cfg.max_outside_share),
            dem=Path(cfg.dem) if cfg.get("dem") else None,
            out_dir=Path(str(cfg.out_dir)),
            device=str(cfg.device),
            precision=str(cfg.precision),
            tile_size=int(cfg.tile_size),
            overlap=int(cfg.overlap),
            batch_size=cfg.batch_size,
            readers=cfg.readers,
            mc_samples=int(cfg.mc_samples),
            tta=int(cfg.tta),
            seed=int(cfg.seed),
            uncertainty=uncertainty_choice(cfg.uncertainty),
            temperature=temperature,
            probabilities=str(cfg.probabilities),
            cog=bool(cfg.cog),
            compile=bool(cfg.compile),
            min_area_km2=float(cfg.min_area_km2),
            simplify_m=float(cfg.simplify_m),
            overwrite=bool(cfg.overwrite),
            progress=bool(cfg.progress),
            shard=None if cfg.shard is None else int(cfg.shard),
            num_shards=int(cfg.num_shards),
        )

    @property
    def uses_data(self) -> bool:
        """Whether the data config is built: its scenes are mapped or its outlines score."""
        return self.inputs is None or self.labels == "data"

    def build_data(self) -> DataSpec:
        """The data config as a :class:`DataSpec` (a config of another kind is refused)."""
        return build_as(self.data_config, DataSpec, "data", DATA_HINT, _convert_="all")
