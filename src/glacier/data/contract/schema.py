"""The dataset contract: one typed description shared by preprocessing, training, prediction.

The preprocessor writes it once (``dataset.json``); the DataModule loads it; every checkpoint
stores it as a plain dict (``GlacierSegmenter.hparams["data"]``, so checkpoints load with
``weights_only=True`` and loggers show readable values) and prediction parses it back. It also
holds the constants every stage shares: the ignore/nodata label, the background class name, the
split names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from glacier.data.contract.nodata import NodataRule
from glacier.errors import GlacierInputError

FORMAT_VERSION = 2  # bump when the meaning of a stored artifact or contract field changes
IGNORE_INDEX = 255  # label value of nodata pixels: ignored by losses and metrics, nodata in maps
BACKGROUND = "background"  # output 0 of every model; never a dataset class
SPLITS = ("train", "dev", "test")
CHANNEL_KINDS = ("band", "index", "dem", "file")
STORED_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float16", "float32")
REBUILD_HINT = "re-run `glacier preprocess` with the same data config to rebuild it"


@dataclass(frozen=True)
class Channel:
    """One input channel and how its values are made.

    Attributes:
        name: Channel name (a raw band name, or ``ndvi``, ``elevation``...).
        kind: ``band`` (raw band of a scene file), ``index`` (computed normalized difference),
            ``dem`` (elevation/slope resampled from a DEM) or ``file`` (a derived channel read
            from a scene file, as in the HKH release's 15-band tiles).
        formula: How the values are defined, in band names: ``(B4-B3)/(B4+B3)`` for an index,
            ``elevation [m]``/``slope [deg]`` for DEM channels; None for raw bands. Two
            channels with the same name but different formulas are different inputs.
        dtype: NumPy dtype the processed dataset stores the channel in.
        source_dtypes: Dtypes of the band in the training scenes' files, before any narrowing
            for storage (raw and file channels; empty for computed channels and contracts
            from before they were recorded). Prediction refuses a scene whose band has
            another dtype unless a conversion is stated.
    """

    name: str
    kind: str = "band"
    formula: str | None = None
    dtype: str = "float32"
    source_dtypes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "source_dtypes", tuple(str(d) for d in self.source_dtypes))
        if self.kind not in CHANNEL_KINDS:
            raise GlacierInputError(
                f"channel {self.name!r}: kind {self.kind!r} not in {CHANNEL_KINDS}"
            )
        if self.dtype not in STORED_DTYPES:
            raise GlacierInputError(
                f"channel {self.name!r}: dtype {self.dtype!r} not one of {STORED_DTYPES}"
            )


@dataclass(frozen=True)
class ChannelStats:
    """Normalization statistics per channel, over valid training pixels.

    Attributes:
        mean: Mean per channel name.
        std: Standard deviation per channel name (> 0).
        pixels: Valid training pixels they were computed from.
        ranges: Per channel, the training value range: the 0.1 and 99.9 % quantiles of the
            valid training pixels (prediction refuses inputs mostly outside it). Empty in
            contracts from before it was recorded.
    """

    mean: Mapping[str, float]
    std: Mapping[str, float]
    pixels: int = 0
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ranges = {str(k): (float(v[0]), float(v[1])) for k, v in self.ranges.items()}
        object.__setattr__(self, "ranges", ranges)
        for name, value in self.std.items():
            if not value > 0 or value != value or value == float("inf"):
                raise GlacierInputError(
                    f"normalization std of channel {name!r} is {value}: it must be finite and "
                    f"> 0 (a constant channel gets std 1); {REBUILD_HINT}"
                )
        for name, value in self.mean.items():
            if value != value or abs(value) == float("inf"):
                raise GlacierInputError(f"normalization mean of channel {name!r} is {value}")
        if set(self.mean) != set(self.std):
            raise GlacierInputError("normalization statistics name different channels")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable plain dict (``ranges`` only when recorded)."""
        data: dict[str, Any] = {
            "mean": dict(self.mean),
            "std": dict(self.std),
            "pixels": self.pixels,
        }
        if self.ranges:
            data["ranges"] = {name: list(bounds) for name, bounds in self.ranges.items()}
        return data

    def of(self, channels: Sequence[str]) -> tuple[list[float], list[float]]:
        """Means and stds of ``channels``, in that order.

        Raises:
            GlacierInputError: If a channel has no statistics.
        """
        missing = [c for c in channels if c not in self.mean]
        if missing:
            raise GlacierInputError(f"no normalization statistics for channel(s) {missing}")
        return [float(self.mean[c]) for c in channels], [float(self.std[c]) for c in channels]


@dataclass(frozen=True)
class DatasetContract:
    """Everything a model needs to know about its data, and everything a processed dataset is.

    Attributes:
        name: Dataset name.
        channels: Stored channels, in order.
        classes: Class names, one label channel each (background is implicit: output 0).
        band_layout: Raw band names per source file of a scene (how to read a raw scene).
        band_roles: Index role (``red``, ``nir``...) → band name.
        nodata: The nodata rule.
        slice_size: Training window edge in pixels.
        channel_sets: Named channel subsets (``channels=rgb``).
        stats: Normalization statistics (None until computed).
        format_version: Version of this contract and of the stored layout.
    """

    name: str
    channels: tuple[Channel, ...]
    classes: tuple[str, ...]
    band_layout: tuple[tuple[str, ...], ...] = ()
    band_roles: Mapping[str, str] = field(default_factory=dict)
    nodata: NodataRule = field(default_factory=NodataRule)
    slice_size: int = 512
    channel_sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    stats: ChannelStats | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        names = self.channel_names
        if len(set(names)) != len(names):
            raise GlacierInputError(f"dataset {self.name!r}: duplicate channel names {names}")
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise GlacierInputError(f"dataset {self.name!r}: classes must be unique and non-empty")
        if BACKGROUND in self.classes:
            raise GlacierInputError(
                f"dataset {self.name!r}: {BACKGROUND!r} is implicit, not a class"
            )
        for set_name, members in self.channel_sets.items():
            unknown = [c for c in members if c not in names]
            if unknown:
                raise GlacierInputError(
                    f"channel set {set_name!r} names {unknown}, not channels of {names}"
                )

    @property
    def channel_names(self) -> list[str]:
        """Channel names in stored order."""
        return [c.name for c in self.channels]

    def channel(self, name: str) -> Channel:
        """The channel called ``name``."""
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise GlacierInputError(f"dataset {self.name!r} has no channel {name!r}")

    def with_stats(self, stats: ChannelStats) -> DatasetContract:
        """A copy with normalization statistics."""
        return replace(self, stats=stats)

    def select_channels(self, requested: str | Sequence[str] | None) -> list[str]:
        """Resolve ``channels=`` (a set name, a list of channel names, or None for all).

        Raises:
            GlacierInputError: For an unknown set or channel name.
        """
        if requested is None:
            return self.channel_names
        if isinstance(requested, str):
            if requested not in self.channel_sets:
                raise GlacierInputError(
                    f"channels={requested!r} is neither a channel set of dataset {self.name!r} "
                    f"({sorted(self.channel_sets)}) nor a list of channels ({self.channel_names})"
                )
            requested = self.channel_sets[requested]
        unknown = [c for c in requested if c not in self.channel_names]
        if unknown or not requested:
            raise GlacierInputError(
                f"unknown channel(s) {unknown or list(requested)} in channels=; dataset "
                f"{self.name!r} has {self.channel_names}"
            )
        return list(requested)

    def select_classes(self, requested: str | Sequence[str] | None) -> list[str]:
        """Resolve ``classes=`` (class names, or None for every class).

        Raises:
            GlacierInputError: For an unknown or empty selection.
        """
        if requested is None:
            return list(self.classes)
        if isinstance(requested, str):
            requested = [requested]
        unknown = [c for c in requested if c not in self.classes]
        if unknown or not requested:
            raise GlacierInputError(
                f"unknown class(es) {unknown or list(requested)} in classes=; dataset "
                f"{self.name!r} has {list(self.classes)}"
            )
        return list(requested)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable plain dict (for ``dataset.json`` and checkpoints)."""
        return {
            "format_version": self.format_version,
            "name": self.name,
            "channels": [_channel_dict(c) for c in self.channels],
            "classes": list(self.classes),
            "band_layout": [list(files) for files in self.band_layout],
            "band_roles": dict(self.band_roles),
            "nodata": self.nodata.to_dict(),
            "slice_size": self.slice_size,
            "channel_sets": {k: list(v) for k, v in self.channel_sets.items()},
            "stats": None if self.stats is None else self.stats.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "dataset contract") -> DatasetContract:
        """Parse :meth:`to_dict` output (format 2).

        Args:
            data: The plain dict.
            where: What it came from, for error messages (a file or checkpoint path).

        Raises:
            GlacierInputError: For another format version or a malformed contract.
        """
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise GlacierInputError(
                f"{where}: written by a glacier with dataset format {version or 1}, this one "
                f"reads format {FORMAT_VERSION}; {REBUILD_HINT}"
            )
        try:
            stats = data.get("stats")
            return cls(
                name=str(data["name"]),
                channels=tuple(Channel(**c) for c in data["channels"]),
                classes=tuple(data["classes"]),
                band_layout=tuple(tuple(files) for files in data.get("band_layout", ())),
                band_roles=dict(data.get("band_roles") or {}),
                nodata=NodataRule.from_dict(data.get("nodata") or {}),
                slice_size=int(data["slice_size"]),
                channel_sets={k: tuple(v) for k, v in (data.get("channel_sets") or {}).items()},
                stats=None if stats is None else ChannelStats(**stats),
            )
        except (KeyError, TypeError) as error:
            raise GlacierInputError(f"{where}: malformed dataset contract ({error!r})") from error


def _channel_dict(channel: Channel) -> dict[str, Any]:
    """A channel as a plain dict (``source_dtypes`` only when recorded, as a list)."""
    data = vars(channel).copy()
    if channel.source_dtypes:
        data["source_dtypes"] = list(channel.source_dtypes)
    else:
        del data["source_dtypes"]
    return data
