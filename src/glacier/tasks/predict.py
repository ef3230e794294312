"""What ``predict.py`` does: load a checkpoint, map scenes, vectorize, evaluate, draw."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from glacier.data.checks import validate_scenes
from glacier.data.contract import check_compatible
from glacier.data.labels import load_label_sources, load_outlines
from glacier.data.preprocess import select_scenes
from glacier.data.raster import SceneReader, spec_contract
from glacier.data.spec import DataSpec, LabelSource, SceneSpec
from glacier.errors import (
    GlacierConfigError,
    GlacierInputError,
    require_choice,
    require_non_negative,
    require_positive,
    require_range,
)
from glacier.inference.engine import (
    PROBABILITY_FORMATS,
    PredictionOutputs,
    PredictSettings,
    SceneJob,
    default_batch_size,
    default_readers,
    precision_name,
    predict_scenes,
    resolve_device,
    resolve_precision,
)
from glacier.inference.evaluation import format_metrics_table, format_uncertainty_table
from glacier.inference.inputs import expand_inputs, scenes_from_inputs
from glacier.inference.products import (
    ProductSettings,
    finished,
    make_products,
    prediction_fingerprint,
    write_record,
)
from glacier.models import MEASURES, GlacierSegmenter, Passes, UncertaintyEvaluation
from glacier.tasks import hydra_entry
from glacier.tasks.config import build
from glacier.tasks.members import load_members
from glacier.tasks.members import load_segmenter as load_segmenter  # its home before ensembles
from glacier.utils.runtime import tune_malloc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadSettings:
    """How to read raw scenes into the checkpoint's channels.

    Attributes:
        derived: Derived channels to compute (indices, DEM channels).
        band_roles: Index role → band name.
        dem: DEM file for elevation/slope.
        nodata: Nodata value for files that declare none.
        nodata_all_zero: A pixel 0 in every band is nodata.
    """

    derived: list[str]
    band_roles: dict[str, str]
    dem: Path | None
    nodata: float | None
    nodata_all_zero: bool = False

    def reader_args(self) -> tuple[Any, ...]:
        """Positional arguments of :class:`SceneReader` after the scene."""
        return self.derived, self.band_roles, self.dem, self.nodata, self.nodata_all_zero


def _scenes(
    cfg: DictConfig, module: GlacierSegmenter
) -> tuple[list[SceneSpec], ReadSettings, DataSpec | None]:
    """Scenes to map (``input=`` files, or the data config's scenes) and how to read them.

    Scenes of a data config are read as that config says, after checking that its channels
    are the checkpoint's by name and formula; ``input=`` files are read as the checkpoint's
    training data was.
    """
    contract = module.contract
    needed = [contract.channel(name) for name in module.channel_names]
    data: DataSpec | None = None
    if cfg.input is None or cfg.labels == "data":
        data = build(cfg.data, _convert_="all")
    dem = Path(cfg.dem) if cfg.get("dem") else None
    if cfg.input is None:
        assert data is not None
        validate_scenes(data)  # every scene's headers before the first map is written
        check_compatible(spec_contract(data).channels, needed, f"data={data.name}")
        settings = ReadSettings(
            list(data.derived),
            dict(data.band_roles),
            data.dem or dem,
            data.nodata,
            data.nodata_all_zero,
        )
        return list(data.scenes), settings, data
    derived = [c.name for c in contract.channels if c.kind in ("index", "dem")]
    nodata = contract.nodata
    settings = ReadSettings(derived, dict(contract.band_roles), dem, nodata.value, nodata.all_zero)
    layout = [list(files) for files in contract.band_layout]
    return scenes_from_inputs(expand_inputs(cfg.input), layout), settings, data


def _label_files(cfg: DictConfig, data: DataSpec | None) -> list[Path]:
    """The reference outline files (they change the metrics)."""
    if cfg.labels is None:
        return []
    if cfg.labels == "data":
        assert data is not None
        return [label.path for label in data.labels]
    return [Path(str(cfg.labels))]


def _reference(cfg: DictConfig, data: DataSpec | None, classes: list[str]) -> Any:
    """Reference outlines: none, the data config's, or one polygon file."""
    if cfg.labels is None:
        return None
    if cfg.labels == "data":
        assert data is not None
        return load_outlines(data)
    label_class = cfg.get("label_class") or (classes[0] if len(classes) == 1 else None)
    if label_class is None:
        raise GlacierInputError(
            f"labels={cfg.labels}: the checkpoint predicts {classes}; say which one the file "
            "holds with label_class=NAME, or use labels=data with a data config"
        )
    source = LabelSource(path=Path(str(cfg.labels)), class_name=str(label_class))
    return load_label_sources([source], [str(label_class)])


def check_settings(cfg: DictConfig) -> None:
    """Refuse impossible settings before anything is loaded or written.

    Raises:
        GlacierConfigError: Naming the key and the bound.
    """
    require_range("tile_size", cfg.tile_size, 32, integer=True)
    require_range("overlap", cfg.overlap, 0, cfg.tile_size, integer=True, high_inclusive=False)
    require_non_negative("mc_samples", cfg.mc_samples)
    require_range("tta", cfg.tta, 1, 8, integer=True, high_inclusive=True)
    require_non_negative("min_area_km2", cfg.min_area_km2, integer=False)
    require_non_negative("simplify_m", cfg.simplify_m, integer=False)
    require_choice("probabilities", cfg.probabilities, PROBABILITY_FORMATS)
    measures = uncertainty_choice(cfg.uncertainty)
    Passes(views=int(cfg.tta), mc_samples=int(cfg.mc_samples)).check(measures or [])
    if str(cfg.temperature) != "checkpoint":
        require_range("temperature", cfg.temperature, 0, None, integer=False, low_inclusive=False)
    require_positive("num_shards", cfg.num_shards)
    if cfg.shard is not None:
        require_range("shard", cfg.shard, 0, cfg.num_shards, integer=True, high_inclusive=False)
    out_dir = Path(str(cfg.out_dir))
    if out_dir.exists() and not out_dir.is_dir():
        raise GlacierConfigError(f"out_dir={out_dir} is a file; give a folder for the maps")


def uncertainty_choice(value: Any) -> tuple[str, ...] | None:
    """The ``uncertainty=`` setting: None for ``auto``, the measures to write otherwise.

    Raises:
        GlacierConfigError: For a name that is no measure.
    """
    if value is None or str(value) == "none":
        return ()
    if str(value) == "auto":
        return None
    names = (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)
    for name in names:
        require_choice("uncertainty", name, [*MEASURES, "auto", "none"])
    return names


def predict_settings(cfg: DictConfig, members: list[GlacierSegmenter]) -> PredictSettings:
    """Device, precision, batch and reader defaults resolved for this machine.

    ``temperature=checkpoint``: each member divides its logits by its own fitted temperature.
    """
    device = resolve_device(cfg.device)
    if str(cfg.temperature) == "checkpoint":
        temperatures = tuple(member.temperature_value for member in members)
    else:
        temperatures = (float(cfg.temperature),) * len(members)
    return PredictSettings(
        tile_size=int(cfg.tile_size),
        overlap=int(cfg.overlap),
        batch_size=default_batch_size(device, cfg.batch_size),
        mc_samples=int(cfg.mc_samples),
        tta=int(cfg.tta),
        seed=int(cfg.seed),
        temperatures=temperatures,
        uncertainty=uncertainty_choice(cfg.uncertainty),
        score_measures=cfg.labels is not None,
        device=device,
        precision=resolve_precision(cfg.precision, device),
        probabilities=str(cfg.probabilities),
        readers=default_readers(device, cfg.readers),
        channels_last=bool(members[0].hparams["channels_last"]),
        cog=bool(cfg.cog),
    )


def output_settings(cfg: DictConfig, settings: PredictSettings) -> dict[str, Any]:
    """Every setting that changes a scene's outputs (part of its fingerprint)."""
    return {
        "tile_size": settings.tile_size,
        "overlap": settings.overlap,
        "mc_samples": settings.mc_samples,
        "tta": settings.tta,
        "seed": settings.seed,
        "temperature": settings.passes.temperature
        if len(settings.temperatures) == 1
        else list(settings.temperatures),
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


def checkpoint_names(paths: list[Path]) -> str | list[str]:
    """The checkpoint's file name; an ensemble's members as ``<run>/<file>`` (no absolute path)."""
    if len(paths) == 1:
        return paths[0].name
    return [f"{path.parent.parent.name}/{path.name}" for path in paths]


def shard_of(scenes: list[SceneSpec], shard: int | None, num_shards: int) -> list[SceneSpec]:
    """This shard's scenes: every ``num_shards``-th from ``shard`` (as preprocessing shards).

    Names are checked over the whole input list first (by :func:`_scenes`), so two shards
    never write the same name.
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


def run_predict(cfg: DictConfig) -> list[dict[str, Any]]:
    """Map every requested scene (or this shard's) with a trained checkpoint.

    Scenes whose record shows the same checkpoint, inputs and settings are skipped unless
    ``overwrite=true``; the rest run through one pipelined predictor.

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
    scenes, read, data = _scenes(cfg, module)
    scenes = shard_of(scenes, cfg.shard, cfg.num_shards)
    out_dir = Path(str(cfg.out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    label_files = _label_files(cfg, data)
    keys = {
        s.id: prediction_fingerprint(checkpoints, s, output_settings(cfg, settings), label_files)
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
    products = ProductSettings(
        class_names=module.class_names,
        min_area_km2=float(cfg.min_area_km2),
        simplify_m=float(cfg.simplify_m),
        reference=_reference(cfg, data, module.class_names) if todo else None,
        stac_properties={
            "glacier:checkpoint": checkpoint_names(checkpoints),
            "glacier:mc_samples": settings.mc_samples,
            "glacier:tta": settings.tta,
            "glacier:temperature": output_settings(cfg, settings)["temperature"],
            "glacier:uncertainty": settings.written_measures,
            "glacier:precision": precision_name(settings.precision),
        },
    )
    results: dict[str, dict[str, Any]] = {}

    def on_done(job: SceneJob, reader: SceneReader, outputs: PredictionOutputs) -> None:
        result = make_products(job.key, reader, outputs, products)
        if "metrics" in result:
            print(f"\n{job.key}\n{format_metrics_table(result['metrics'])}")
            if "uncertainty" in result["metrics"]:
                quality = UncertaintyEvaluation.from_dict(result["metrics"]["uncertainty"])
                written = result.get("uncertainty_bands", [])
                print(format_uncertainty_table(quality, written))
                log_uncertainty(job.key, quality, written)
        result["fingerprint"] = keys[job.key]
        write_record(out_dir, job.key, result)
        results[job.key] = result

    jobs = [
        SceneJob(
            key=scene.id,
            open=partial(SceneReader, scene, *read.reader_args()),
            channels=module.channel_names,
            class_names=module.class_names,
            out_prefix=out_dir / scene.id,  # ids are valid file names (glacier.utils.names)
        )
        for scene in todo
    ]
    log.info(
        "mapping %d scene(s) on %s (%s, batch %d, %d reader thread(s))",
        len(jobs),
        settings.device,
        precision_name(settings.precision),
        settings.batch_size,
        settings.readers,
    )
    predict_scenes(members, jobs, settings, on_done=on_done, progress=bool(cfg.progress))
    ordered = [results.get(s.id) or {**(done[s.id] or {}), "skipped": True} for s in scenes]
    for result in ordered:
        log.info("%s: %s", result["scene"], result.get("classes"))
    return ordered


main = hydra_entry("predict", run_predict)

if __name__ == "__main__":
    main()
