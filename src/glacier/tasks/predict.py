"""What ``predict.py`` does: load a checkpoint, map scenes, vectorize, evaluate, draw."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from pickle import UnpicklingError
from typing import Any

import torch
from omegaconf import DictConfig

from glacier.config import build
from glacier.data.channels import check_compatible, spec_contract
from glacier.data.outlines import load_label_sources, load_outlines
from glacier.data.scene import SceneReader
from glacier.data.spec import DataSpec, LabelSource, SceneSpec
from glacier.data.validate import validate_scenes
from glacier.errors import GlacierFileNotFoundError, GlacierInputError
from glacier.inference.evaluate import evaluate_scene, format_metrics_table
from glacier.inference.labels import reference_class_map
from glacier.inference.outputs import PROBABILITY_FORMATS
from glacier.inference.predict import predict_scene
from glacier.inference.preview import scene_preview
from glacier.inference.scenes import expand_inputs, scenes_from_inputs
from glacier.inference.stac import write_stac_item
from glacier.inference.vectorize import vectorize_class_map, write_polygons
from glacier.models.segmenter import GlacierSegmenter
from glacier.tasks import hydra_entry
from glacier.utils.io import write_json_atomic
from glacier.utils.runtime import tune_malloc
from glacier.viz import overlay_png

log = logging.getLogger(__name__)


def load_segmenter(ckpt_path: str | Path) -> GlacierSegmenter:
    """Load a trained segmenter without unpickling arbitrary objects (``weights_only``).

    Args:
        ckpt_path: Checkpoint file.

    Returns:
        The model in eval mode on the CPU.

    Raises:
        GlacierFileNotFoundError: If the file does not exist.
        GlacierInputError: If it is not a glacier checkpoint or does not fit its model.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise GlacierFileNotFoundError(f"checkpoint not found: {path}")
    try:
        module = GlacierSegmenter.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except (RuntimeError, KeyError, TypeError, EOFError, ValueError, UnpicklingError) as error:
        raise GlacierInputError(f"cannot load checkpoint {path}: {error}") from error
    return module.eval()


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


def predict_one(
    cfg: DictConfig,
    module: GlacierSegmenter,
    scene: SceneSpec,
    settings: ReadSettings,
    reference: Any,
    out_dir: Path,
) -> dict[str, Any]:
    """Map one scene and write every output beside ``out_dir/{scene}``.

    Returns:
        Paths of the outputs and, with references, the metrics.
    """
    prefix = out_dir / scene.id  # ids are valid file names by construction (utils.names)
    read = settings
    reader_args = (read.derived, read.band_roles, read.dem, read.nodata, read.nodata_all_zero)
    with SceneReader(scene, *reader_args) as reader:
        missing = [c for c in module.channel_names if c not in reader.band_names]
        if missing:
            raise GlacierInputError(
                f"{scene.sources[0].path}: the checkpoint needs channels {missing}, the scene has "
                f"{reader.band_names}"
            )
        outputs = predict_scene(
            module,
            reader,
            channel_indices=[reader.band_names.index(c) for c in module.channel_names],
            class_names=module.class_names,
            out_prefix=prefix,
            tile_size=cfg.tile_size,
            overlap=cfg.overlap,
            batch_size=cfg.batch_size,
            mc_samples=cfg.mc_samples,
            seed=cfg.seed,
            device=cfg.device,
            channels_last=module.hparams["channels_last"],
            probabilities=cfg.probabilities,
            progress=True,
        )
        polygons = vectorize_class_map(
            outputs.classes,
            module.class_names,
            min_area_km2=cfg.min_area_km2,
            simplify_tolerance_m=cfg.simplify_m,
        )
        gpkg = prefix.with_name(prefix.name + "_glaciers.gpkg")
        write_polygons(polygons, gpkg)
        result: dict[str, Any] = {
            "scene": scene.id,
            "classes_tif": str(outputs.classes),
            "polygons": str(gpkg),
            **{k: str(v) for k, v in vars(outputs).items() if v},
        }
        truth = None
        if reference is not None:
            truth = reference_class_map(reference, module.class_names, reader)
            metrics = evaluate_scene(outputs.classes, truth, module.class_names)
            metrics_path = prefix.with_name(prefix.name + "_metrics.json")
            write_json_atomic(metrics_path, metrics)
            result["metrics"] = metrics
            result["metrics_json"] = str(metrics_path)
            print(f"\n{scene.id}\n{format_metrics_table(metrics)}")
        rgb, transform = scene_preview(reader)
        png = prefix.with_name(prefix.name + "_overlay.png")
        overlay_png(
            rgb,
            polygons,
            png,
            transform=transform,
            reference=truth,
            reference_transform=reader.transform,
        )
        result["overlay"] = str(png)
    run = {"glacier:checkpoint": Path(cfg.ckpt_path).name, "glacier:mc_samples": cfg.mc_samples}
    metrics_json = result.get("metrics_json")
    result["stac"] = str(
        write_stac_item(scene.id, outputs, gpkg, png, metrics_json, module.class_names, run)
    )
    return result


def run_predict(cfg: DictConfig) -> list[dict[str, Any]]:
    """Predict every requested scene with a trained checkpoint.

    Args:
        cfg: A composed ``predict`` config.

    Returns:
        One result dictionary per scene.
    """
    if cfg.probabilities not in PROBABILITY_FORMATS:
        raise GlacierInputError(
            f"probabilities={cfg.probabilities!r}: choose one of {list(PROBABILITY_FORMATS)}"
        )
    tune_malloc()
    module = load_segmenter(cfg.ckpt_path)
    scenes, settings, data = _scenes(cfg, module)
    reference = _reference(cfg, data, module.class_names)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        results = [
            predict_one(cfg, module, scene, settings, reference, out_dir) for scene in scenes
        ]
    write_json_atomic(out_dir / "predictions.json", results)
    for result in results:
        log.info("%s: %s", result["scene"], {k: v for k, v in result.items() if k != "metrics"})
    return results


main = hydra_entry("predict", run_predict)

if __name__ == "__main__":
    main()
