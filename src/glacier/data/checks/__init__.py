"""Input checks before anything is written: scenes, DEM, region, outlines, values vs a model."""

from glacier.data.checks.input_values import MAX_OUTSIDE, BandCheck, check_scene_values
from glacier.data.checks.inputs import (
    InputHeaders,
    read_scene_header,
    scene_input_fingerprint,
    validate_inputs,
    validate_scenes,
)

__all__ = [
    "MAX_OUTSIDE",
    "BandCheck",
    "InputHeaders",
    "check_scene_values",
    "read_scene_header",
    "scene_input_fingerprint",
    "validate_inputs",
    "validate_scenes",
]
