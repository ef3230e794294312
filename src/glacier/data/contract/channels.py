"""Channel definitions of a data config: names, formulas, stored dtypes (contract channels).

Every derived channel carries its formula in band names, so ``ndsi`` computed as
``(B2-B5)/(B2+B5)`` (green/SWIR, the textbook NDSI) and the HKH release's ``ndsi`` read from its
tiles as ``(B5-B2)/(B5+B2)`` are different inputs, and a checkpoint refuses the wrong one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from glacier.data.contract.nodata import NodataRule
from glacier.data.contract.schema import STORED_DTYPES, Channel, DatasetContract
from glacier.errors import GlacierInputError


@dataclass(frozen=True)
class DerivedChannel:
    """A channel computed from a scene's bands (an index) or from its DEM.

    Attributes:
        name: Channel name (``data.derived`` entries).
        dtype: Stored dtype: indices in [-1, 1] keep ~3 decimals in float16, slope in degrees
            0.06°; elevation needs float32 (float16 steps by 4 m at 8000 m).
        roles: An index's (numerator-positive, numerator-negative) band roles: the index is
            ``(a - b) / (a + b)`` of the bands playing them. None for a DEM channel.
        formula: A DEM channel's formula as contracts spell it (``elevation [m]``).
    """

    name: str
    dtype: str
    roles: tuple[str, str] | None = None
    formula: str = ""


DERIVED: dict[str, DerivedChannel] = {
    channel.name: channel
    for channel in (
        DerivedChannel("ndvi", "float16", roles=("nir", "red")),
        DerivedChannel("ndwi", "float16", roles=("green", "nir")),
        DerivedChannel("ndsi", "float16", roles=("green", "swir1")),
        DerivedChannel("elevation", "float32", formula="elevation [m]"),
        DerivedChannel("slope", "float16", formula="slope [deg]"),
    )
}
"""The derived-channel registry: adding an index (e.g. NDBI) is one line here."""
INDEX_BANDS: dict[str, tuple[str, str]] = {
    name: channel.roles for name, channel in DERIVED.items() if channel.roles is not None
}
"""Index name → its two band roles (a view of :data:`DERIVED`)."""
DEM_CHANNELS = tuple(name for name, channel in DERIVED.items() if channel.roles is None)
"""The channels computed from the DEM (a view of :data:`DERIVED`)."""


def role_band(role: str, band_names: Sequence[str], band_roles: Mapping[str, str]) -> str | None:
    """Name of the band that plays ``role``, or None when the scene has none.

    Args:
        role: ``red``, ``green``, ``nir`` or ``swir1``.
        band_names: Raw band names of the scene.
        band_roles: Explicit role → band name mapping.

    Returns:
        The band name.
    """
    name = band_roles.get(role, role)
    return name if name in band_names else None


def normalized_difference_formula(first: str, second: str) -> str:
    """``(first-second)/(first+second)``: the one spelling of a normalized-difference formula."""
    return f"({first}-{second})/({first}+{second})"


def canonical_formula(formula: str | None) -> str | None:
    """A formula with spaces and Unicode minus signs normalized, for comparisons."""
    if formula is None:
        return None
    return formula.replace("−", "-").replace(" ", "")


def index_formula(name: str, band_names: Sequence[str], band_roles: Mapping[str, str]) -> str:
    """The formula of a computed index in the scene's band names, e.g. ``(B4-B3)/(B4+B3)``.

    Raises:
        GlacierInputError: For an unknown index or a missing band role.
    """
    if name not in INDEX_BANDS:
        raise GlacierInputError(f"unknown index {name!r}; known: {sorted(INDEX_BANDS)}")
    bands = [role_band(role, band_names, band_roles) for role in INDEX_BANDS[name]]
    if None in bands:
        raise GlacierInputError(
            f"{name} needs bands for roles {INDEX_BANDS[name]}; bands {list(band_names)}, "
            f"band_roles {dict(band_roles)}"
        )
    return normalized_difference_formula(str(bands[0]), str(bands[1]))


def derived_channel(name: str, band_names: Sequence[str], band_roles: Mapping[str, str]) -> Channel:
    """The contract channel of a computed derived channel (index or DEM)."""
    if name in DEM_CHANNELS:
        dem = DERIVED[name]
        return Channel(name, "dem", dem.formula, dem.dtype)
    formula = index_formula(name, band_names, band_roles)
    return Channel(name, "index", formula, DERIVED[name].dtype)


def storable_dtype(dtype: str) -> str:
    """The dtype a raw band is stored in: its own, or float32 for types we do not store."""
    return dtype if dtype in STORED_DTYPES else "float32"


def raw_channels(
    band_names: Sequence[str],
    dtypes: Sequence[str],
    formulas: Mapping[str, str] | None = None,
    storage_dtypes: Mapping[str, str] | None = None,
    source_dtypes: Sequence[Sequence[str]] | None = None,
) -> list[Channel]:
    """Contract channels of a scene's raw bands.

    Args:
        band_names: Raw band names in file order.
        dtypes: Source dtype of each band (promoted over the scenes).
        formulas: Bands that are derived channels read from the file, with their formula
            (``{ndsi: (B5-B2)/(B5+B2)}``) or ``elevation [m]``/``slope [deg]``.
        storage_dtypes: Narrower dtypes to store bands in (e.g. ``uint8`` for digital numbers
            kept as float32 in the file); checked on every valid pixel while slicing.
        source_dtypes: Per band, every dtype it has in the scenes' files (default: ``dtypes``).

    Returns:
        One channel per band.
    """
    formulas = formulas or {}
    storage_dtypes = storage_dtypes or {}
    unknown = sorted(set(formulas) - set(band_names)) + sorted(
        set(storage_dtypes) - set(band_names)
    )
    if unknown:
        raise GlacierInputError(
            f"data.formulas/data.storage_dtypes name {unknown}, which are not bands "
            f"{list(band_names)}"
        )
    seen = source_dtypes if source_dtypes is not None else [[dtype] for dtype in dtypes]
    channels = []
    for name, dtype, found in zip(band_names, dtypes, seen, strict=True):
        stored = storage_dtypes.get(name, storable_dtype(dtype))
        formula = canonical_formula(formulas.get(name))
        kind = "file" if formula else "band"
        channels.append(Channel(name, kind, formula, stored, tuple(sorted(set(found)))))
    return channels


def build_contract(
    name: str,
    classes: Sequence[str],
    band_layout: Sequence[Sequence[str]],
    channels: Sequence[Channel],
    band_roles: Mapping[str, str],
    nodata: NodataRule,
    slice_size: int,
    channel_sets: Mapping[str, Sequence[str]],
) -> DatasetContract:
    """A contract without statistics (postprocessing adds them)."""
    return DatasetContract(
        name=name,
        channels=tuple(channels),
        classes=tuple(classes),
        band_layout=tuple(tuple(files) for files in band_layout),
        band_roles=dict(band_roles),
        nodata=nodata,
        slice_size=slice_size,
        channel_sets={k: tuple(v) for k, v in channel_sets.items()},
    )


def promote(dtypes: Sequence[Sequence[str]]) -> list[str]:
    """Per band, the dtype holding every scene's values (scenes may differ, e.g. uint8/uint16)."""
    return [str(np.result_type(*column)) for column in zip(*dtypes, strict=True)]


def check_compatible(provided: Sequence[Channel], needed: Sequence[Channel], where: str) -> None:
    """Refuse inputs whose channels differ from a model's by name or formula.

    Args:
        provided: Channels the scene or data config provides.
        needed: Channels the model was trained on.
        where: The scene or config, for the message.

    Raises:
        GlacierInputError: Naming the first missing or different channel.
    """
    by_name = {channel.name: channel for channel in provided}
    for channel in needed:
        got = by_name.get(channel.name)
        if got is None:
            raise GlacierInputError(
                f"{where}: the checkpoint needs channel {channel.name!r}, which it does not have "
                f"(it has {list(by_name)})"
            )
        if canonical_formula(got.formula) != canonical_formula(channel.formula):
            raise GlacierInputError(
                f"{where}: channel {channel.name!r} is {got.formula or 'a raw band'} but the "
                f"checkpoint was trained on {channel.formula or 'a raw band'}; the model would "
                "see different values under the same name"
            )
