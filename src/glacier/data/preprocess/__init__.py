"""Preprocessing.

raw scenes + outlines → stored scenes, slice windows, filter, split (or spatial cross-validation
folds), statistics, the index and the contract, published together as one generation; sharded
runs and their gather step.
"""

from glacier.data.preprocess.filtering import SliceFilter
from glacier.data.preprocess.folds import FOLD, FOLD_COLUMNS, FOLD_TOUCH, SpatialFolds, resolve_fold
from glacier.data.preprocess.gather import publish_dataset
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
from glacier.data.preprocess.publishing import (
    POSTPROCESS,
    dataset_generation,
    publish_generation,
    stage_index,
)
from glacier.data.preprocess.scene_stage import slices_geojson
from glacier.data.preprocess.shards import check_stage, select_scenes, stale_stagings
from glacier.data.preprocess.splits import GeographicSplit, RandomSplit
from glacier.data.preprocess.staging import (
    discard_staging,
    remove_dead_stagings,
    stage_payload,
    stage_record_path,
    write_stage_record,
)

__all__ = [
    "FOLD",
    "FOLD_COLUMNS",
    "FOLD_TOUCH",
    "INDEX_COLUMNS",
    "POSTPROCESS",
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
    "dataset_generation",
    "discard_staging",
    "fold_info",
    "index_columns",
    "publish_dataset",
    "publish_generation",
    "remove_dead_stagings",
    "resolve_fold",
    "select_scenes",
    "slices_geojson",
    "stage_index",
    "stage_payload",
    "stage_record_path",
    "stale_stagings",
    "write_dataset",
    "write_stage_record",
]
