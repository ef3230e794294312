"""What ``predict.py`` does: load a checkpoint, map scenes, vectorize, evaluate, draw.

Every check runs before the first output is written (:mod:`glacier.tasks.predict_inputs`);
each scene's outputs are written in a staging folder and published together, record last
(:mod:`glacier.inference.products.publishing`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from pathlib import Path

from omegaconf import DictConfig

from glacier.data.preprocess import select_scenes
from glacier.data.raster import SceneReader
from glacier.data.spec import SceneSpec
from glacier.errors import RunInterrupted
from glacier.inference.engine import (
    PredictionOutputs,
    PredictSettings,
    SceneJob,
    precision_name,
    predict_scenes,
)
from glacier.inference.evaluation import format_metrics_table, format_uncertainty_table
from glacier.inference.products import (
    MapProducts,
    PredictionRecord,
    ProductSettings,
    discard_outputs,
    finished,
    make_products,
    prediction_fingerprint,
    products_from_maps,
    publish_scene_outputs,
    recover_outputs,
    scene_staging,
)
from glacier.models import GlacierSegmenter, UncertaintyEvaluation
from glacier.tasks import hydra_entry
from glacier.tasks.members import load_members
from glacier.tasks.members import load_segmenter as load_segmenter  # its home before ensembles
from glacier.tasks.per_glacier import finish_run, per_glacier_run
from glacier.tasks.predict_inputs import (
    ReadSettings,
    check_input_values,
    label_files,
    reference_outlines,
    scenes_to_map,
    unreferenced_scenes,
)
from glacier.tasks.predict_options import PredictOptions
from glacier.tasks.predict_setup import (
    checkpoint_names,
    checkpoints_sha256,
    output_settings,
    predict_settings,
    product_settings,
)
from glacier.utils.publish import new_token
from glacier.utils.runtime import tune_malloc

log = logging.getLogger(__name__)


def shard_of(scenes: list[SceneSpec], shard: int | None, num_shards: int) -> list[SceneSpec]:
    """This shard's scenes: every ``num_shards``-th from ``shard`` (as preprocessing shards).

    Names are checked over the whole input list first (by :func:`scenes_to_map`), so two
    shards never write the same name.
    """
    return [scenes[i] for i in select_scenes(len(scenes), None, shard, num_shards)]


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


def print_scores(scene: str, record: PredictionRecord) -> None:
    """The scene's metrics and uncertainty tables (or why it has none)."""
    if record.metrics is not None:
        print(f"\n{scene}\n{format_metrics_table(record.metrics)}")
        if "uncertainty" in record.metrics:
            quality = UncertaintyEvaluation.from_dict(record.metrics["uncertainty"])
            written = list(record.uncertainty_bands)
            print(format_uncertainty_table(quality, written))
            log_uncertainty(scene, quality, written)
    elif record.no_reference is not None:
        print(f"\n{scene}: no reference ({record.no_reference}); no metrics")


def skipped(record: PredictionRecord | None, scene: str) -> PredictionRecord:
    """A finished scene's record as this run's result (``skipped``)."""
    if record is None:  # every scene is either mapped by this run or found finished
        raise AssertionError(f"{scene}: neither mapped nor found finished")
    return replace(record, skipped=True)


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


def run_predict(cfg: DictConfig) -> list[PredictionRecord]:
    """Map every requested scene (or this shard's) with a trained checkpoint.

    Scenes whose record shows the same checkpoint, inputs and settings are skipped unless
    ``overwrite=true``; the rest run through one pipelined predictor. Every check runs before
    the first file is written; each scene's outputs are published together.

    Args:
        cfg: A composed ``predict`` config (checked and typed at once: :class:`PredictOptions`).

    Returns:
        One record per scene (paths, metrics), skipped ones included (``skipped``).
    """
    return predict(PredictOptions.from_config(cfg))


def predict(options: PredictOptions) -> list[PredictionRecord]:
    """:func:`run_predict` with its settings checked and typed.

    Returns:
        One record per scene (paths, metrics), skipped ones included (``skipped``).
    """
    tune_malloc()
    members, checkpoints = load_members(options.ckpt_path, options.checkpoint)
    module = members[0]  # the ensemble's contract (every member shares it)
    settings = predict_settings(options, members)
    scenes, read, data = scenes_to_map(options, module.contract, module.channel_names)
    glaciers = per_glacier_run(options.inventory, data, scenes)
    scenes = shard_of(scenes, options.shard, options.num_shards)
    out_dir = options.out_dir
    recover_outputs(out_dir, [s.id for s in scenes])
    files = label_files(options, data) + ([glaciers.inventory.settings.path] if glaciers else [])
    output = output_settings(options, settings)
    keys = {
        s.id: prediction_fingerprint(
            checkpoints,
            s,
            {**output, "per_glacier": glaciers.fingerprint(s.id) if glaciers else None},
            files,
        )
        for s in scenes
    }
    done = {
        s.id: None if options.overwrite else finished(out_dir, s.id, keys[s.id]) for s in scenes
    }
    todo = [s for s in scenes if done[s.id] is None]
    if len(todo) < len(scenes):
        log.info(
            "%d of %d scene(s) already mapped with these settings: skipped (overwrite=true "
            "redoes them)",
            len(scenes) - len(todo),
            len(scenes),
        )
    reference = reference_outlines(options, data, module.class_names) if todo else None
    missing = unreferenced_scenes(reference, module.class_names, todo, str(options.labels))
    names = checkpoint_names(checkpoints)
    checkpoint = names if isinstance(names, str) else ", ".join(names)
    limit = options.max_outside_share
    check_input_values(todo, module.contract, module.channel_names, read, checkpoint, limit)
    products = product_settings(
        options, module, checkpoints, settings, reference, missing, glaciers
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    results = map_scenes(
        options, members, checkpoints, settings, todo, read, products, keys, out_dir
    )
    ordered = [results.get(s.id) or skipped(done[s.id], s.id) for s in scenes]
    for result in ordered:
        log.info("%s: %s", result.scene, result.classes)
    if glaciers is not None:
        finish_run(glaciers, ordered, module.class_names, out_dir)
    return ordered


def log_mapping(scenes: int, settings: PredictSettings) -> None:
    """Say how many scenes are mapped, where and how."""
    log.info(
        "mapping %d scene(s) on %s (%s, batch %d, %d reader thread(s))",
        scenes,
        settings.device,
        precision_name(settings.precision),
        settings.batch_size,
        settings.readers,
    )


def map_scenes(
    options: PredictOptions,
    members: list[GlacierSegmenter],
    checkpoints: list[Path],
    settings: PredictSettings,
    todo: list[SceneSpec],
    read: ReadSettings,
    products: ProductSettings,
    keys: dict[str, str],
    out_dir: Path,
) -> dict[str, PredictionRecord]:
    """Map ``todo`` through the predictor; publish each scene's outputs as it finishes.

    Raises:
        RunInterrupted: On SIGINT/SIGTERM, saying which scenes were published.
    """
    token = new_token()
    stagings = {scene.id: scene_staging(out_dir, scene.id, token) for scene in todo}
    results: dict[str, PredictionRecord] = {}
    checkpoint_sha256 = checkpoints_sha256(checkpoints) if todo else ""
    module = members[0]

    early: dict[str, MapProducts] = {}  # made from the streamed maps while COGs are built

    def on_maps(
        job: SceneJob, reader: SceneReader, outputs: PredictionOutputs, maps: PredictionOutputs
    ) -> None:
        early[job.key] = products_from_maps(job.key, reader, outputs, products, maps)

    def on_done(job: SceneJob, reader: SceneReader, outputs: PredictionOutputs) -> None:
        made = make_products(job.key, reader, outputs, products, early.pop(job.key))
        print_scores(job.key, made)
        record = replace(
            made,
            fingerprint=keys[job.key],
            checkpoint_sha256=checkpoint_sha256,
            class_names=tuple(module.class_names),
        )
        results[job.key] = publish_scene_outputs(out_dir, stagings[job.key], record)

    log_mapping(len(todo), settings)
    jobs = scene_jobs(todo, read, module, stagings)
    try:
        predict_scenes(members, jobs, settings, on_done, progress=options.progress, on_maps=on_maps)
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
