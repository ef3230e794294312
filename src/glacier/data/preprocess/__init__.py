"""Preprocessing.

raw scenes + outlines → stored scenes, slice windows, filter, split (or spatial cross-validation
folds), statistics, the index and the contract; sharded runs and their gather step.
"""

from glacier.data.preprocess.filtering import SliceFilter
from glacier.data.preprocess.folds import FOLD, FOLD_COLUMNS, FOLD_TOUCH, SpatialFolds, resolve_fold
from glacier.data.preprocess.postprocess import (
    INDEX_COLUMNS,
    assign_splits,
    channel_stats,
    fold_info,
    index_columns,
    write_dataset,
)
from glacier.data.preprocess.preprocessor import Preprocessor
from glacier.data.preprocess.protocol import DatasetPreprocessor, Splitter
from glacier.data.preprocess.scene_stage import slices_geojson
from glacier.data.preprocess.shards import check_stage, select_scenes, stale_stagings
from glacier.data.preprocess.splits import GeographicSplit, RandomSplit

__all__ = [
    "FOLD",
    "FOLD_COLUMNS",
    "FOLD_TOUCH",
    "INDEX_COLUMNS",
    "DatasetPreprocessor",
    "GeographicSplit",
    "Preprocessor",
    "RandomSplit",
    "SliceFilter",
    "SpatialFolds",
    "Splitter",
    "assign_splits",
    "channel_stats",
    "check_stage",
    "fold_info",
    "index_columns",
    "resolve_fold",
    "select_scenes",
    "slices_geojson",
    "stale_stagings",
    "write_dataset",
]
