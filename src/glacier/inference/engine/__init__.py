"""The predictor: whole scenes through the model, pipelined.

Devices, tiles read ahead, batched forward passes (MC dropout, TTA), blending and encoding on the
device, GeoTIFF/COG writing, many scenes pipelined.
"""

from glacier.inference.engine.cog import COG_MEDIA_TYPE, RESAMPLING_CATEGORICAL, to_cog
from glacier.inference.engine.device import (
    batch_for_memory,
    default_batch_size,
    default_readers,
    memory_batch_size,
    precision_name,
    resolve_device,
    resolve_precision,
)
from glacier.inference.engine.mapper import predict_scenes
from glacier.inference.engine.outputs import PredictionOutputs, UncertaintyBands
from glacier.inference.engine.tile_predictor import PredictSettings, SceneJob
from glacier.inference.engine.writer import PROBABILITY_FORMATS

__all__ = [
    "COG_MEDIA_TYPE",
    "PROBABILITY_FORMATS",
    "RESAMPLING_CATEGORICAL",
    "PredictSettings",
    "PredictionOutputs",
    "SceneJob",
    "UncertaintyBands",
    "batch_for_memory",
    "default_batch_size",
    "default_readers",
    "memory_batch_size",
    "precision_name",
    "predict_scenes",
    "resolve_device",
    "resolve_precision",
    "to_cog",
]
