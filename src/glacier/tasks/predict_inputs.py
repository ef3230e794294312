"""Predict's checks at the door: what to map, how to read it, what to score it against.

Everything here runs before the first output is written: the settings, the scenes (headers,
channels by name and formula), each scene's bands against the checkpoint's training dtypes and
value ranges, and the reference outlines (their layer, and whether they cover each scene).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glacier.data.checks import check_scene_values, read_scene_header, validate_scenes
from glacier.data.contract import DatasetContract, NodataRule, check_compatible
from glacier.data.labels import ClassOutlines, load_label_sources, load_outlines
from glacier.data.raster import InputConversion, spec_contract
from glacier.data.spec import DataSpec, LabelSource, SceneSpec
from glacier.errors import GlacierInputError
from glacier.inference.evaluation import reference_polygons
from glacier.inference.inputs import expand_inputs, scenes_from_inputs
from glacier.tasks.predict_options import PredictOptions

log = logging.getLogger(__name__)


def conversion_hint(scale: float | None) -> str:
    """What to do about a scene unlike the training data (``scale``: a factor to suggest)."""
    example = f"{scale:.6g}" if scale is not None else "S"
    return (
        "convert the scene to the training data's dtype and scale, or state a conversion: "
        f"input_conversion='{{scale: {example}, offset: 0}}' (values x scale + offset before "
        "the model) or input_conversion=as_is (the values are comparable as they are)"
    )


@dataclass(frozen=True)
class ReadSettings:
    """How to read raw scenes into the checkpoint's channels.

    Attributes:
        derived: Derived channels to compute (indices, DEM channels).
        band_roles: Index role → band name.
        dem: DEM file for elevation/slope.
        nodata: The nodata rule (value of files that declare none, all-zero pixels, QA flags).
        conversion: The user's conversion of raw values (None: read as they are).
    """

    derived: list[str]
    band_roles: dict[str, str]
    dem: Path | None
    nodata: NodataRule | None = None
    conversion: InputConversion | None = None

    def reader_args(self) -> tuple[Any, ...]:
        """Positional arguments of :class:`SceneReader` after the scene."""
        return (
            self.derived,
            self.band_roles,
            self.dem,
            self.nodata,
            self.conversion,
        )


def scenes_to_map(
    options: PredictOptions, contract: DatasetContract, channel_names: Sequence[str]
) -> tuple[list[SceneSpec], ReadSettings, DataSpec | None]:
    """Scenes to map (``input=`` files, or the data config's scenes) and how to read them.

    Scenes of a data config are read as that config says, after checking that its channels
    are the checkpoint's by name and formula; ``input=`` files are read as the checkpoint's
    training data was.
    """
    needed = [contract.channel(name) for name in channel_names]
    data = options.build_data() if options.uses_data else None
    dem, conversion = options.dem, options.conversion
    if options.inputs is None:
        assert data is not None
        validate_scenes(data)  # every scene's headers before the first map is written
        check_compatible(spec_contract(data).channels, needed, f"data={data.name}")
        settings = ReadSettings(
            list(data.derived),
            dict(data.band_roles),
            data.dem or dem,
            data.nodata_rule,
            conversion,
        )
        return list(data.scenes), settings, data
    derived = [c.name for c in contract.channels if c.kind in ("index", "dem")]
    settings = ReadSettings(
        derived,
        dict(contract.band_roles),
        dem,
        contract.nodata,
        conversion,
    )
    layout = [list(files) for files in contract.band_layout]
    return scenes_from_inputs(expand_inputs(options.inputs), layout), settings, data


def check_input_values(
    scenes: Sequence[SceneSpec],
    contract: DatasetContract,
    channel_names: Sequence[str],
    read: ReadSettings,
    checkpoint: str,
    max_outside: float,
) -> None:
    """Compare each scene's bands with the checkpoint's training dtypes and value ranges.

    Checkpoints from before these were recorded are warned about, not refused; a stated
    conversion turns a refusal into a warning.

    Raises:
        GlacierInputError: ``<file>: band 'x' is uint16 with values ... but checkpoint ... was
            trained on uint8 with values ...; <what to do>``.
    """
    used = [contract.channel(name) for name in channel_names]
    raw = [c for c in used if c.kind in ("band", "file")]
    ranges = contract.stats.ranges if contract.stats is not None else {}
    if not raw:
        return
    if not any(c.source_dtypes for c in raw) and not ranges:
        log.warning(
            "checkpoint %s records no training band dtypes or value ranges (it was made before "
            "glacier recorded them): the scenes' values are not checked against its training "
            "data; retrain it to have them checked",
            checkpoint,
        )
        return
    for scene in scenes:
        checks = check_scene_values(scene, raw, ranges, read.nodata, read.conversion)
        for check in checks:
            if not check.mismatch(max_outside):
                continue
            if read.conversion is None:
                hint = conversion_hint(check.scale)
                raise GlacierInputError(f"{check.describe(checkpoint)}; {hint}")
            log.warning("%s (after input_conversion)", check.describe(checkpoint))


def label_files(options: PredictOptions, data: DataSpec | None) -> list[Path]:
    """The reference outline files (they change the metrics)."""
    if options.labels is None:
        return []
    if options.labels == "data":
        assert data is not None
        return [label.path for label in data.labels]
    return [Path(options.labels)]


def reference_outlines(
    options: PredictOptions, data: DataSpec | None, classes: list[str]
) -> ClassOutlines | None:
    """Reference outlines: none, the data config's, or one polygon file (``label_layer=``)."""
    if options.labels is None:
        return None
    if options.labels == "data":
        assert data is not None
        return load_outlines(data)
    label_class = options.label_class or (classes[0] if len(classes) == 1 else None)
    if label_class is None:
        raise GlacierInputError(
            f"labels={options.labels}: the checkpoint predicts {classes}; say which one the "
            "file holds with label_class=NAME, or use labels=data with a data config"
        )
    source = LabelSource(Path(options.labels), str(label_class), layer=options.label_layer)
    return load_label_sources([source], [str(label_class)], layer_keys=["label_layer"])


def unreferenced_scenes(
    reference: ClassOutlines | None,
    classes: Sequence[str],
    scenes: Sequence[SceneSpec],
    labels: str,
) -> dict[str, str]:
    """Scenes that no reference outline covers (scores against them would be against nothing).

    One scene alone is refused; in a batch each such scene is marked "no reference".

    Returns:
        Scene id → why it has no reference.

    Raises:
        GlacierInputError: When the only scene to map has no reference.
    """
    if reference is None:
        return {}
    missing = {}
    for scene in scenes:
        header = read_scene_header(scene)
        crs = header.grid.crs_object
        if not reference_polygons(reference, classes, crs, header.footprint):
            missing[scene.id] = (
                f"no outline of labels={labels} overlaps scene {scene.id!r} "
                f"({scene.sources[0].path})"
            )
    if missing and len(scenes) == 1:
        (reason,) = missing.values()
        raise GlacierInputError(
            f"{reason}: its scores would be against an empty reference; give the outlines of "
            "this scene's area, or map it without labels="
        )
    for reason in missing.values():
        log.warning("%s: no metrics for it (marked 'no reference' in its record)", reason)
    return missing
