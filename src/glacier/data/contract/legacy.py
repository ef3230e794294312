"""Read what format-1 glacier wrote (checkpoints from before the dataset contract).

Format-1 checkpoints keep the raw band layout, derived channel names and the normalization
statistics of the selected channels in separate hyperparameters; their derived channels were
computed with the formulas of :mod:`glacier.data.raster.derived` (green/NIR NDWI, green/SWIR NDSI),
which is what they are read as.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from glacier.data.contract.channels import derived_channel
from glacier.data.contract.nodata import NodataRule
from glacier.data.contract.schema import Channel, ChannelStats, DatasetContract
from glacier.errors import GlacierInputError


def contract_from_v1(
    data: Mapping[str, Any], normalization: Mapping[str, Any], class_names: Sequence[str]
) -> DatasetContract:
    """The contract of a format-1 checkpoint.

    Args:
        data: Its ``hparams["data"]`` (``scene_bands``, ``derived``, ``band_roles``...).
        normalization: Its ``hparams["normalization"]`` (``channels``, ``means``, ``stds``).
        class_names: Its selected classes (used when the dataset classes are missing).

    Returns:
        The equivalent contract (statistics of the selected channels only).

    Raises:
        GlacierInputError: If the hyperparameters are not those of a glacier checkpoint.
    """
    try:
        layout = [list(files) for files in data["scene_bands"][0]]
        bands = [band for files in layout for band in files]
        roles = dict(data.get("band_roles") or {})
        channels = [Channel(band, "band", None, "float32") for band in bands]
        channels += [derived_channel(name, bands, roles) for name in data.get("derived") or []]
        stats = ChannelStats(
            mean=dict(zip(normalization["channels"], normalization["means"], strict=True)),
            std=dict(zip(normalization["channels"], normalization["stds"], strict=True)),
        )
        return DatasetContract(
            name=str(data.get("name") or "unknown"),
            channels=tuple(channels),
            classes=tuple(data.get("dataset_classes") or class_names),
            band_layout=tuple(tuple(files) for files in layout),
            band_roles=roles,
            nodata=NodataRule(value=data.get("nodata")),
            slice_size=int(data.get("slice_size") or 512),
            stats=stats,
            format_version=2,
        )
    except (KeyError, IndexError, TypeError) as error:
        raise GlacierInputError(f"not a glacier checkpoint of format 1 ({error!r})") from error


def checkpoint_contract(
    data: Mapping[str, Any] | None,
    normalization: Mapping[str, Any] | None,
    class_names: Sequence[str],
) -> DatasetContract:
    """The contract stored in a checkpoint's hyperparameters, of any format.

    Raises:
        GlacierInputError: If there is none or it cannot be read.
    """
    if data and data.get("format_version"):
        return DatasetContract.from_dict(data, where="checkpoint hyperparameters")
    if data and normalization:
        return contract_from_v1(data, normalization, class_names)
    raise GlacierInputError("the checkpoint holds no dataset contract (hparams 'data')")
