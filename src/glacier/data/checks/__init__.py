"""Input checks from headers, before anything is written: scenes, DEM, region and outlines."""

from glacier.data.checks.inputs import (
    InputHeaders,
    read_scene_header,
    scene_input_fingerprint,
    validate_inputs,
    validate_scenes,
)

__all__ = [
    "InputHeaders",
    "read_scene_header",
    "scene_input_fingerprint",
    "validate_inputs",
    "validate_scenes",
]
