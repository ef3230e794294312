"""glacier: map clean-ice and debris-covered glaciers in Landsat 7 imagery."""

import os
from importlib.metadata import PackageNotFoundError, version

# GDAL's block cache defaults to 5 % of RAM and is never released; windowed reads touch each
# block about once, so a small cache keeps memory bounded by windows, not scenes.
os.environ.setdefault("GDAL_CACHEMAX", "64")
# uncompressed GeoTIFFs: copy windows straight from the file instead of through that cache
# (about 2x faster reads; GDAL ignores it for compressed files)
os.environ.setdefault("GTIFF_DIRECT_IO", "YES")

from glacier.config import register_resolvers

# The distribution's name on the package index (the import package and command are `glacier`;
# PyPI's "glacier" is an unrelated project). The version lives in pyproject.toml only.
DISTRIBUTION = "hkh-glacier-mapping"
try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # run from a source tree that was never installed (PYTHONPATH=src)
    __version__ = "0+unknown"

register_resolvers()
