"""Layers of vector files: a file with several layers is read only with the layer named.

GDAL reads the first layer of a GeoPackage when none is named, and pyogrio only warns; an
``aoi`` box saved before the ``glaciers`` layer then silently becomes the outlines. So every
polygon input (label sources, the region, geographic split regions, predict's ``labels=``)
goes through :func:`choose_layer`: one layer is used as it is, several are refused until the
config names one, with each layer's geometry type and feature count listed.
"""

from __future__ import annotations

from pathlib import Path

import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from glacier.errors import GlacierFileError, one_line, require_file


def _features(path: Path, layer: str) -> str:
    try:
        count = int(pyogrio.read_info(path, layer=layer)["features"])
    except (DataSourceError, DataLayerError, ValueError, KeyError):
        return "? features"
    if count < 0:
        return "? features"
    return f"{count} feature{'' if count == 1 else 's'}"


def layer_listing(path: Path) -> list[str]:
    """``name (geometry type, N features)`` for each layer of a vector file."""
    return [
        f"{name} ({kind or 'no geometry'}, {_features(path, str(name))})"
        for name, kind in pyogrio.list_layers(path)
    ]


def choose_layer(
    path: Path | str, layer: str | None, key: str, what: str = "vector file"
) -> str | None:
    """The layer of ``path`` to read: ``layer`` (checked), or None when the file has one.

    Args:
        path: The vector file.
        layer: The configured layer name, if any.
        key: The config key that names the layer (e.g. ``data.labels[0].layer``).
        what: The file's role, for messages (``outline file (data.labels[0])``).

    Returns:
        ``layer``, or None for a single-layer file without one (read its only layer).

    Raises:
        GlacierFileError: If the file cannot be listed, has no layer of that name, or has
            several layers and none is named; the message lists every layer.
    """
    path = Path(path)
    require_file(path, what)
    try:
        names = [str(name) for name, _ in pyogrio.list_layers(path)]
    except (DataSourceError, DataLayerError, ValueError) as error:
        raise GlacierFileError(
            f"{what} {path} cannot be read as a vector file ({one_line(error)}); check the file "
            "(a .shp needs its .shx/.dbf/.prj beside it)"
        ) from error
    if layer is not None:
        if layer not in names:
            raise GlacierFileError(
                f"{what} {path} has no layer {layer!r} ({key}); its layers: "
                f"{', '.join(layer_listing(path))}"
            )
        return layer
    if len(names) <= 1:
        return None
    raise GlacierFileError(
        f"{what} {path} has {len(names)} layers: {', '.join(layer_listing(path))}; name the "
        f"one to use with {key}=NAME"
    )
