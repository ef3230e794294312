"""Raster reading.

headers and their checks (a VRT's source files included), footprints and coverage, derived
channels, the windowed scene reader (with a stated input conversion), and a data config's
contract read off its scene headers; a preview's RGB samples, taken as the scene is read.
"""

from glacier.data.raster.areas import pixel_size_m, row_pixel_areas_km2
from glacier.data.raster.config_contract import spec_contract
from glacier.data.raster.conversion import InputConversion
from glacier.data.raster.derived import validate_derived
from glacier.data.raster.footprints import band_file_coverage, coverage, reproject_box
from glacier.data.raster.headers import (
    RasterHeader,
    check_band_count,
    check_georeferenced,
    check_scene_size,
    read_header,
)
from glacier.data.raster.rgb_sample import RgbSample, rgb_band_indices
from glacier.data.raster.scene_header import BandFileHeader, SceneHeader
from glacier.data.raster.scene_reader import SceneReader, open_scene
from glacier.data.raster.windows import finite_everywhere

__all__ = [
    "BandFileHeader",
    "InputConversion",
    "RasterHeader",
    "RgbSample",
    "SceneHeader",
    "SceneReader",
    "band_file_coverage",
    "check_band_count",
    "check_georeferenced",
    "check_scene_size",
    "coverage",
    "finite_everywhere",
    "open_scene",
    "pixel_size_m",
    "read_header",
    "reproject_box",
    "rgb_band_indices",
    "row_pixel_areas_km2",
    "spec_contract",
    "validate_derived",
]
