"""What ``glacier predict``'s typed options become: the engine's, the records' and the products'.

:func:`predict_settings` resolves the device-dependent defaults into the engine's
:class:`~glacier.inference.engine.PredictSettings`; :func:`output_settings` is every setting that
changes a scene's outputs (its fingerprint); :func:`product_settings` what is made of each map.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import torch

from glacier.data.labels import ClassOutlines
from glacier.inference.engine import (
    PredictSettings,
    default_batch_size,
    default_readers,
    memory_batch_size,
    precision_name,
    resolve_device,
    resolve_precision,
)
from glacier.inference.products import ProductSettings
from glacier.models import GlacierSegmenter
from glacier.tasks.cv import sweep_calibration
from glacier.tasks.per_glacier import PerGlacierRun
from glacier.tasks.predict_options import PredictOptions
from glacier.utils.io import file_sha256

log = logging.getLogger(__name__)


def member_temperatures(
    temperature: float | None, ckpt_path: str | list[str], members: list[GlacierSegmenter]
) -> tuple[float, ...]:
    """What divides each model's logits.

    ``temperature=checkpoint`` (None): one model's fitted temperature; an ensemble of a
    cross-validation sweep (a folder with ``cv.json``) the calibration its folds' dev logits
    chose (none, one temperature pooled over the folds, or each member's own:
    :func:`glacier.tasks.cv.sweep_calibration`); any other ensemble, each member's own.
    A number: that, for every member.
    """
    if temperature is not None:
        return (temperature,) * len(members)
    folder = Path(str(ckpt_path))
    swept = sweep_calibration(folder) if len(members) > 1 and folder.is_dir() else None
    if swept is not None:
        log.info("ensemble temperature: %s (the sweep's dev ECE: %s)", swept.chosen, swept.dev_ece)
    if swept is not None and swept.temperature is not None:
        return (swept.temperature,) * len(members)
    return tuple(member.temperature_value for member in members)


def forward_batch_size(
    options: PredictOptions,
    module: GlacierSegmenter,
    device: torch.device,
    precision: torch.dtype | None,
) -> int:
    """``batch_size``: ``auto`` on a GPU is what fits in half its free memory (measured)."""
    if str(options.batch_size) == "auto" and device.type == "cuda":
        channels = len(module.channel_names)
        return memory_batch_size(module, channels, options.tile_size, device, precision)
    return default_batch_size(device, options.batch_size)


def predict_settings(options: PredictOptions, members: list[GlacierSegmenter]) -> PredictSettings:
    """Device, precision, batch and reader defaults resolved for this machine.

    Temperatures: :func:`member_temperatures`.
    """
    device = resolve_device(options.device)
    precision = resolve_precision(options.precision, device)
    temperatures = member_temperatures(options.temperature, options.ckpt_path, members)
    return PredictSettings(
        tile_size=options.tile_size,
        overlap=options.overlap,
        batch_size=forward_batch_size(options, members[0], device, precision),
        mc_samples=options.mc_samples,
        tta=options.tta,
        seed=options.seed,
        temperatures=temperatures,
        uncertainty=options.uncertainty,
        score_measures=options.labels is not None,
        device=device,
        precision=precision,
        probabilities=options.probabilities,
        readers=default_readers(device, options.readers),
        channels_last=bool(members[0].hparams["channels_last"]),
        cog=options.cog,
        # per-glacier intervals are summed from the pass maps
        pass_maps=options.inventory.source is not None,
        compile=options.compile,
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
    extra: dict[str, Any] = {
        "label_layer": options.label_layer,
        "input_conversion": options.conversion_text,
    }
    if settings.compile:  # compiled kernels may round differently; off: today's fingerprints
        extra["compile"] = True
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
