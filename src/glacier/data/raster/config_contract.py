"""The contract of a scenes + outlines data config, read off its scene files' headers."""

from __future__ import annotations

from collections.abc import Sequence

import rasterio
from rasterio.errors import RasterioIOError

from glacier.data.contract import (
    DatasetContract,
    build_contract,
    derived_channel,
    promote,
    raw_channels,
)
from glacier.data.spec import BandSource, DataSpec
from glacier.errors import GlacierInputError


def raw_band_dtypes(sources: Sequence[BandSource]) -> list[str]:
    """Dtype of every band of a scene's files, in order (headers only).

    Raises:
        GlacierInputError: Naming an unreadable file or one whose band count differs from its
            configured band names.
    """
    dtypes: list[str] = []
    for source in sources:
        try:
            with rasterio.open(source.path) as dataset:
                if dataset.count != len(source.bands):
                    raise GlacierInputError(
                        f"{source.path} has {dataset.count} band(s) but the data config names "
                        f"{len(source.bands)}: {list(source.bands)}"
                    )
                dtypes.extend(str(d) for d in dataset.dtypes)
        except RasterioIOError as error:
            raise GlacierInputError(f"cannot read raster {source.path}: {error}") from error
    return dtypes


def spec_contract(spec: DataSpec) -> DatasetContract:
    """The contract (without statistics) of a scenes + outlines data config.

    Raw band dtypes come from the scene files' headers: promoted across scenes for storage,
    and recorded as they are (``Channel.source_dtypes``) for prediction's input check.

    Args:
        spec: The data config.

    Returns:
        The contract: raw bands (file-read derived channels with their formulas), then the
        computed derived channels.
    """
    first = spec.scenes[0]
    per_scene = [raw_band_dtypes(scene.sources) for scene in spec.scenes]
    counts = {len(d) for d in per_scene}
    if len(counts) != 1:
        raise GlacierInputError(
            f"data {spec.name!r}: scenes have different band counts {sorted(counts)}; every "
            "scene needs the same bands"
        )
    band_names = first.band_names
    channels = raw_channels(
        band_names,
        promote(per_scene),
        spec.formulas,
        spec.storage_dtypes,
        [list(column) for column in zip(*per_scene, strict=True)],
    )
    channels += [derived_channel(d, band_names, spec.band_roles) for d in spec.derived]
    return build_contract(
        spec.name,
        spec.classes,
        [source.bands for source in first.sources],
        channels,
        spec.band_roles,
        spec.nodata_rule,
        spec.slice_size,
        spec.channel_sets,
    )
