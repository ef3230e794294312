"""glacier: map clean-ice and debris-covered glaciers in Landsat 7 imagery.

Layers, lowest first (each imports only those below it; checked by import-linter in
``make test``): :mod:`glacier.errors` and :mod:`glacier.utils` → :mod:`glacier.data` →
:mod:`glacier.viz` → :mod:`glacier.models` → :mod:`glacier.inference` → :mod:`glacier.tasks`
→ :mod:`glacier.cli`. ``docs/architecture.md`` walks through them.
"""

import os
from importlib.metadata import PackageNotFoundError, version

from glacier import legacy_paths

# GDAL's block cache defaults to 5 % of RAM and is never released; windowed reads touch each
# block about once, so a small cache keeps memory bounded by windows, not scenes.
os.environ.setdefault("GDAL_CACHEMAX", "64")
# uncompressed GeoTIFFs: copy windows straight from the file instead of through that cache
# (about 2x faster reads; GDAL ignores it for compressed files)
os.environ.setdefault("GTIFF_DIRECT_IO", "YES")
# PyTorch's OpenMP workers spin between parallel regions by default; beside the predictor's
# reader and writer threads (and other processes) on a few cores, a spinning or descheduled
# worker stalls every small op of blending and encoding: the predict path ran 2-3x slower on a
# shared 2-core machine (python -m benchmarks.run --rows predict-path). Sleeping workers cost
# nothing measurable on large ops. Read once, when PyTorch loads: set before importing torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# The distribution's name on the package index (the import package and command are `glacier`;
# PyPI's "glacier" is an unrelated project). The version lives in pyproject.toml only.
DISTRIBUTION = "hkh-glacier-mapping"
try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # run from a source tree that was never installed (PYTHONPATH=src)
    __version__ = "0+unknown"

legacy_paths.install()
