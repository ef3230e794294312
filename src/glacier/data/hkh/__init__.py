"""The published HKH release (LILA), read in place.

its index, true footprints, its preprocessor and its pixel store.
"""

from glacier.data.hkh.preprocessor import ReleasePreprocessor
from glacier.data.hkh.release import (
    HkhRelease,
    estimated_utm_epsg,
    release_tiles_spec,
    slice_statistics,
)
from glacier.data.hkh.release_facts import RELEASE_FORMULAS, compact_release_channels
from glacier.data.hkh.store import ReleaseStore

__all__ = [
    "RELEASE_FORMULAS",
    "HkhRelease",
    "ReleasePreprocessor",
    "ReleaseStore",
    "compact_release_channels",
    "estimated_utm_epsg",
    "release_tiles_spec",
    "slice_statistics",
]
