"""What ``glacier predict``'s typed options become: the engine's, the records' and the products'.

:func:`predict_settings` resolves the device-dependent defaults into the engine's
:class:`~glacier.inference.engine.PredictSettings`; :func:`output_settings` is every setting that
changes a scene's outputs (its fingerprint); :func:`product_settings` what is made of each map.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from glacier.data.labels import ClassOutlines
from glacier.inference.engine import (
    PredictSettings,
    default_batch_size,
    default_readers,
    precision_name,
    resolve_device,
    resolve_precision,
)
from glacier.inference.products import ProductSettings
from glacier.models import GlacierSegmenter
from glacier.tasks.per_glacier import PerGlacierRun
from glacier.tasks.predict_options import PredictOptions
from glacier.utils.io import file_sha256


def predict_settings(options: PredictOptions, members: list[GlacierSegmenter]) -> PredictSettings:
    """Device, precision, batch and reader defaults resolved for this machine.

    ``temperature=checkpoint``: each member divides its logits by its own fitted temperature.
    """
    device = resolve_device(options.device)
    if options.temperature is None:
        temperatures = tuple(member.temperature_value for member in members)
    else:
        temperatures = (options.temperature,) * len(members)
    return PredictSettings(
        tile_size=options.tile_size,
        overlap=options.overlap,
        batch_size=default_batch_size(device, options.batch_size),
        mc_samples=options.mc_samples,
        tta=options.tta,
        seed=options.seed,
        temperatures=temperatures,
        uncertainty=options.uncertainty,
        score_measures=options.labels is not None,
        device=device,
        precision=resolve_precision(options.precision, device),
        probabilities=options.probabilities,
        readers=default_readers(device, options.readers),
        channels_last=bool(members[0].hparams["channels_last"]),
        cog=options.cog,
        # per-glacier intervals are summed from the pass maps
        pass_maps=options.inventory.source is not None,
    )


def output_settings(options: PredictOptions, settings: PredictSettings) -> dict[str, Any]:
    """Every setting that changes a scene's outputs (part of its fingerprint)."""
    chosen = {
        "tile_size": settings.tile_size,
        "overlap": settings.overlap,
        "mc_samples": settings.mc_samples,
        "tta": settings.tta,
        "seed": settings.seed,
        "temperature": temperature_setting(settings),
        "uncertainty": settings.written_measures,
        "scored_measures": settings.scored_measures,
        "precision": precision_name(settings.precision),
        "probabilities": settings.probabilities,
        "cog": settings.cog,
        "min_area_km2": options.min_area_km2,
        "simplify_m": options.simplify_m,
        "labels": options.labels,
        "label_class": options.label_class,
    }
    extra = {"label_layer": options.label_layer, "input_conversion": options.conversion_text}
    return chosen | {k: str(v) for k, v in extra.items() if v is not None}


def temperature_setting(settings: PredictSettings) -> float | list[float]:
    """The temperature of the passes; an ensemble's, one per member."""
    temperatures = settings.temperatures
    return settings.passes.temperature if len(temperatures) == 1 else list(temperatures)


def checkpoint_names(paths: list[Path]) -> str | list[str]:
    """The checkpoint's file name; an ensemble's members as ``<run>/<file>`` (no absolute path)."""
    if len(paths) == 1:
        return paths[0].name
    return [f"{path.parent.parent.name}/{path.name}" for path in paths]


def checkpoints_sha256(paths: list[Path]) -> str:
    """The checkpoint file's SHA-256; an ensemble's: of its members' digests, in order."""
    digests = [file_sha256(path) for path in paths]
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def product_settings(
    options: PredictOptions,
    module: GlacierSegmenter,
    checkpoints: list[Path],
    settings: PredictSettings,
    reference: ClassOutlines | None,
    no_reference: dict[str, str],
    glaciers: PerGlacierRun | None,
) -> ProductSettings:
    """What to make of each map: polygons, metrics, per-glacier areas, the STAC item."""
    return ProductSettings(
        class_names=module.class_names,
        min_area_km2=options.min_area_km2,
        simplify_m=options.simplify_m,
        reference=reference,
        stac_properties={
            "glacier:checkpoint": checkpoint_names(checkpoints),
            "glacier:mc_samples": settings.mc_samples,
            "glacier:tta": settings.tta,
            "glacier:temperature": temperature_setting(settings),
            "glacier:uncertainty": settings.written_measures,
            "glacier:precision": precision_name(settings.precision),
        },
        inventory=None if glaciers is None else glaciers.inventory,
        footprints=() if glaciers is None else glaciers.footprints,
        no_reference=no_reference,
    )
