"""Preprocessing.

raw scenes + outlines → stored scenes, slice windows, filter, split, statistics, the index and
the contract; sharded runs and their gather step.
"""

from glacier.data.preprocess.filtering import SliceFilter
from glacier.data.preprocess.postprocess import (
    INDEX_COLUMNS,
    assign_splits,
    channel_stats,
    write_dataset,
)
from glacier.data.preprocess.preprocessor import Preprocessor
from glacier.data.preprocess.protocol import DatasetPreprocessor, Splitter
from glacier.data.preprocess.scene_stage import slices_geojson
from glacier.data.preprocess.shards import check_stage, select_scenes, stale_stagings
from glacier.data.preprocess.splits import GeographicSplit, RandomSplit

__all__ = [
    "INDEX_COLUMNS",
    "DatasetPreprocessor",
    "GeographicSplit",
    "Preprocessor",
    "RandomSplit",
    "SliceFilter",
    "Splitter",
    "assign_splits",
    "channel_stats",
    "check_stage",
    "select_scenes",
    "slices_geojson",
    "stale_stagings",
    "write_dataset",
]
