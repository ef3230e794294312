"""What ``predict.py`` does: load a checkpoint, map scenes, vectorize, evaluate, draw.

Every check runs before the first output is written (:mod:`glacier.tasks.predict_inputs`);
each scene's outputs are written in a staging folder and published together, record last
(:mod:`glacier.inference.products.publishing`).
"""

from __future__ import annotations

import hashlib
import logging
from functools import partial
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from glacier.data.labels import ClassOutlines
from glacier.data.preprocess import select_scenes
from glacier.data.raster import SceneReader
from glacier.data.spec import SceneSpec
from glacier.errors import RunInterrupted
from glacier.inference.engine import (
    PredictionOutputs,
    PredictSettings,
    SceneJob,
    default_batch_size,
    default_readers,
    memory_batch_size,
    precision_name,
    predict_scenes,
    resolve_device,
    resolve_precision,
)
from glacier.inference.evaluation import format_metrics_table, format_uncertainty_table
from glacier.inference.products import (
    ProductSettings,
    discard_outputs,
    finished,
    make_products,
    prediction_fingerprint,
    publish_scene_outputs,
    recover_outputs,
    scene_staging,
)
from glacier.models import GlacierSegmenter, UncertaintyEvaluation
from glacier.tasks import hydra_entry
from glacier.tasks.cv import sweep_calibration
from glacier.tasks.members import load_members
from glacier.tasks.members import load_segmenter as load_segmenter  # its home before ensembles
from glacier.tasks.per_glacier import PerGlacierRun, finish_run, per_glacier_run
from glacier.tasks.predict_inputs import (
    ReadSettings,
    check_input_values,
    check_settings,
    label_files,
    reference_outlines,
    scenes_to_map,
    uncertainty_choice,
    unreferenced_scenes,
)
from glacier.utils.io import file_sha256
from glacier.utils.publish import new_token
from glacier.utils.runtime import tune_malloc

log = logging.getLogger(__name__)


def forward_batch_size(
    cfg: DictConfig, module: GlacierSegmenter, device: torch.device, precision: torch.dtype | None
) -> int:
    """``batch_size``: ``auto`` on a GPU is what fits in half its free memory (measured)."""
    if str(cfg.batch_size) == "auto" and device.type == "cuda":
        channels = len(module.channel_names)
        return memory_batch_size(module, channels, int(cfg.tile_size), device, precision)
    return default_batch_size(device, cfg.batch_size)


def predict_settings(cfg: DictConfig, members: list[GlacierSegmenter]) -> PredictSettings:
    """Device, precision, batch and reader defaults resolved for this machine.

    Temperatures: see :func:`member_temperatures`.
    """
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    temperatures = member_temperatures(cfg, members)
    return PredictSettings(
        tile_size=int(cfg.tile_size),
        overlap=int(cfg.overlap),
        batch_size=forward_batch_size(cfg, members[0], device, precision),
        mc_samples=int(cfg.mc_samples),
        tta=int(cfg.tta),
        seed=int(cfg.seed),
        temperatures=temperatures,
        uncertainty=uncertainty_choice(cfg.uncertainty),
        score_measures=cfg.labels is not None,
        device=device,
        precision=precision,
        probabilities=str(cfg.probabilities),
        readers=default_readers(device, cfg.readers),
        channels_last=bool(members[0].hparams["channels_last"]),
        cog=bool(cfg.cog),
        pass_maps=cfg.get("inventory") is not None,  # per-glacier intervals are summed from them
        compile=bool(cfg.compile),
    )


def member_temperatures(cfg: DictConfig, members: list[GlacierSegmenter]) -> tuple[float, ...]:
    """What divides each model's logits.

    ``temperature=checkpoint``: one model's fitted temperature; an ensemble of a cross-validation
    sweep (a folder with ``cv.json``) the calibration its folds' dev logits chose (none, one
    temperature pooled over the folds, or each member's own: :func:`tasks.cv.sweep_calibration`);
    any other ensemble, each member's own. A number: that, for every member.
    """
    if str(cfg.temperature) != "checkpoint":
        return (float(cfg.temperature),) * len(members)
    folder = Path(str(cfg.ckpt_path))
    swept = sweep_calibration(folder) if len(members) > 1 and folder.is_dir() else None
    if swept is not None:
        log.info("ensemble temperature: %s (the sweep's dev ECE: %s)", swept.chosen, swept.dev_ece)
    if swept is not None and swept.temperature is not None:
        return (swept.temperature,) * len(members)
    return tuple(member.temperature_value for member in members)


def output_settings(cfg: DictConfig, settings: PredictSettings) -> dict[str, Any]:
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
        "min_area_km2": float(cfg.min_area_km2),
        "simplify_m": float(cfg.simplify_m),
        "labels": None if cfg.labels is None else str(cfg.labels),
        "label_class": cfg.get("label_class"),
    }
    extra = {"label_layer": cfg.get("label_layer"), "input_conversion": cfg.get("input_conversion")}
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


def shard_of(scenes: list[SceneSpec], shard: int | None, num_shards: int) -> list[SceneSpec]:
    """This shard's scenes: every ``num_shards``-th from ``shard`` (as preprocessing shards).

    Names are checked over the whole input list first (by :func:`scenes_to_map`), so two
    shards never write the same name.
    """
    return [scenes[i] for i in select_scenes(len(scenes), None, shard, num_shards)]


def product_settings(
    cfg: DictConfig,
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
        min_area_km2=float(cfg.min_area_km2),
        simplify_m=float(cfg.simplify_m),
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


def log_uncertainty(scene: str, quality: UncertaintyEvaluation, written: list[str]) -> None:
    """One log line per scene: how well the written measure ranks the map's errors."""
    for name in written:
        ranking = quality.measures[name]
        log.info(
            "%s: uncertainty %s ranks the map's errors with AUROC %s, AURC %s; ECE %s (%s)",
            scene,
            name,
            ranking.auroc,
            ranking.aurc,
            quality.calibration.ece,
            quality.passes.describe(),
        )


def print_scores(scene: str, result: dict[str, Any]) -> None:
    """The scene's metrics and uncertainty tables (or why it has none)."""
    if "metrics" in result:
        print(f"\n{scene}\n{format_metrics_table(result['metrics'])}")
        if "uncertainty" in result["metrics"]:
            quality = UncertaintyEvaluation.from_dict(result["metrics"]["uncertainty"])
            written = result.get("uncertainty_bands", [])
            print(format_uncertainty_table(quality, written))
            log_uncertainty(scene, quality, written)
    elif "no_reference" in result:
        print(f"\n{scene}: no reference ({result['no_reference']}); no metrics")


def scene_jobs(
    todo: list[SceneSpec],
    read: ReadSettings,
    module: GlacierSegmenter,
    stagings: dict[str, Path],
) -> list[SceneJob]:
    """One predictor job per scene, writing into the scene's staging folder."""
    return [
        SceneJob(
            key=scene.id,
            open=partial(SceneReader, scene, *read.reader_args()),
            channels=module.channel_names,
            class_names=module.class_names,
            out_prefix=stagings[scene.id] / scene.id,  # ids are valid file names
        )
        for scene in todo
    ]


def run_predict(cfg: DictConfig) -> list[dict[str, Any]]:
    """Map every requested scene (or this shard's) with a trained checkpoint.

    Scenes whose record shows the same checkpoint, inputs and settings are skipped unless
    ``overwrite=true``; the rest run through one pipelined predictor. Every check runs before
    the first file is written; each scene's outputs are published together.

    Args:
        cfg: A composed ``predict`` config.

    Returns:
        One result per scene (paths, metrics), skipped ones included.
    """
    check_settings(cfg)
    tune_malloc()
    members, checkpoints = load_members(cfg.ckpt_path, str(cfg.checkpoint))
    module = members[0]  # the ensemble's contract (every member shares it)
    settings = predict_settings(cfg, members)
    scenes, read, data = scenes_to_map(cfg, module.contract, module.channel_names)
    glaciers = per_glacier_run(cfg, data, scenes)
    scenes = shard_of(scenes, cfg.shard, cfg.num_shards)
    out_dir = Path(str(cfg.out_dir))
    recover_outputs(out_dir, [s.id for s in scenes])
    files = label_files(cfg, data) + ([glaciers.inventory.settings.path] if glaciers else [])
    output = output_settings(cfg, settings)
    keys = {
        s.id: prediction_fingerprint(
            checkpoints,
            s,
            {**output, "per_glacier": glaciers.fingerprint(s.id) if glaciers else None},
            files,
        )
        for s in scenes
    }
    done = {s.id: None if cfg.overwrite else finished(out_dir, s.id, keys[s.id]) for s in scenes}
    todo = [s for s in scenes if done[s.id] is None]
    if len(todo) < len(scenes):
        log.info(
            "%d of %d scene(s) already mapped with these settings: skipped (overwrite=true "
            "redoes them)",
            len(scenes) - len(todo),
            len(scenes),
        )
    reference = reference_outlines(cfg, data, module.class_names) if todo else None
    missing = unreferenced_scenes(reference, module.class_names, todo, str(cfg.labels))
    names = checkpoint_names(checkpoints)
    checkpoint = names if isinstance(names, str) else ", ".join(names)
    limit = float(cfg.max_outside_share)
    check_input_values(todo, module.contract, module.channel_names, read, checkpoint, limit)
    products = product_settings(cfg, module, checkpoints, settings, reference, missing, glaciers)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = map_scenes(cfg, members, checkpoints, settings, todo, read, products, keys, out_dir)
    ordered = [results.get(s.id) or {**(done[s.id] or {}), "skipped": True} for s in scenes]
    for result in ordered:
        log.info("%s: %s", result["scene"], result.get("classes"))
    if glaciers is not None:
        finish_run(glaciers, ordered, module.class_names, out_dir)
    return ordered


def map_scenes(
    cfg: DictConfig,
    members: list[GlacierSegmenter],
    checkpoints: list[Path],
    settings: PredictSettings,
    todo: list[SceneSpec],
    read: ReadSettings,
    products: ProductSettings,
    keys: dict[str, str],
    out_dir: Path,
) -> dict[str, dict[str, Any]]:
    """Map ``todo`` through the predictor; publish each scene's outputs as it finishes.

    Raises:
        RunInterrupted: On SIGINT/SIGTERM, saying which scenes were published.
    """
    token = new_token()
    stagings = {scene.id: scene_staging(out_dir, scene.id, token) for scene in todo}
    results: dict[str, dict[str, Any]] = {}
    checkpoint_sha256 = checkpoints_sha256(checkpoints) if todo else ""
    module = members[0]

    def on_done(job: SceneJob, reader: SceneReader, outputs: PredictionOutputs) -> None:
        result = make_products(job.key, reader, outputs, products)
        print_scores(job.key, result)
        result["fingerprint"] = keys[job.key]
        result["checkpoint_sha256"] = checkpoint_sha256
        result["class_names"] = list(module.class_names)
        results[job.key] = publish_scene_outputs(out_dir, stagings[job.key], job.key, result)

    log.info(
        "mapping %d scene(s) on %s (%s, batch %d, %d reader thread(s))",
        len(todo),
        settings.device,
        precision_name(settings.precision),
        settings.batch_size,
        settings.readers,
    )
    jobs = scene_jobs(todo, read, module, stagings)
    try:
        predict_scenes(members, jobs, settings, on_done=on_done, progress=bool(cfg.progress))
    except (KeyboardInterrupt, RunInterrupted) as stop:
        kept = (
            f"{len(results)} of {len(todo)} scene(s) mapped and published in {out_dir}"
            f"{' (' + ', '.join(results) + ')' if results else ''}; the scene(s) in progress "
            "left nothing behind; re-run the same command to map the rest"
        )
        raise RunInterrupted.of(stop, kept) from None
    finally:
        discard_outputs(out_dir, [stagings[s.id] for s in todo if s.id not in results])
    return results


main = hydra_entry("predict", run_predict)

if __name__ == "__main__":
    main()
