"""Data: everything between raw scenes + outlines and the batches a model trains on.

Subpackages, lowest layer first (each imports only those below it; ``make test`` checks this
with import-linter); each one's ``__init__`` is its public face:

- :mod:`glacier.data.contract`: the dataset contract, derived-channel registry, folder layout
- :mod:`glacier.data.spec`: dataset descriptions, the embedded sample, synthetic scenes
- :mod:`glacier.data.raster`: raster headers, footprints, derived channels, the scene reader
- :mod:`glacier.data.labels`: outlines, dates, masks
- :mod:`glacier.data.checks` and :mod:`glacier.data.store`: input checks; pixel stores
- :mod:`glacier.data.preprocess`: the preprocessing pipeline
- :mod:`glacier.data.hkh`: the published HKH release read in place
- :mod:`glacier.data.factory`: which preprocessor and store a dataset uses
- :mod:`glacier.data.loading`: the Lightning DataModule and what feeds it

Nothing is imported here, so ``import glacier.data.contract`` does not load Lightning.
"""

__all__ = [
    "checks",
    "contract",
    "factory",
    "hkh",
    "labels",
    "loading",
    "preprocess",
    "raster",
    "spec",
    "store",
]
