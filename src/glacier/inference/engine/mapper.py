"""Full-scene prediction, pipelined: reader threads → device → writer thread, many scenes per call.

Rows of tiles are read ahead by reader threads (:mod:`glacier.inference.engine.readahead`); tiles
are batched across rows and across scenes, so the device sees full batches; the model (with its
normalization) runs under the chosen precision; blending, the winning class, probabilities and
uncertainty measures are computed on the device (:mod:`glacier.inference.engine.blending`,
:mod:`glacier.inference.engine.encode`); a writer thread writes finished row blocks, turns each
scene's files into COGs and runs the caller's per-scene work (polygons, metrics) while the device
already works on the next scene. Memory is bounded by a few rows of tiles per scene, not by the
scene. MC-dropout draws are seeded per (seed, scene, tile), so maps do not depend on the batch size,
the grouping of scenes or sharding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from glacier.data.raster import SceneReader
from glacier.inference.engine.loop import PredictionLoop
from glacier.inference.engine.outputs import PredictionOutputs
from glacier.inference.engine.tile_predictor import (
    PredictSettings,
    SceneDone,
    SceneJob,
    SceneMaps,
    TilePredictor,
    tile_seed,
)

__all__ = [
    "PredictSettings",
    "PredictionOutputs",
    "SceneJob",
    "SceneMaps",
    "TilePredictor",
    "predict_scene",
    "predict_scenes",
    "tile_seed",
]


def predict_scenes(
    model: nn.Module | Sequence[nn.Module],
    jobs: Iterable[SceneJob],
    settings: PredictSettings,
    on_done: SceneDone | None = None,
    progress: bool = False,
    on_maps: SceneMaps | None = None,
) -> list[PredictionOutputs]:
    """Predict many scenes with one warm model, pipelined (see the module docstring).

    Args:
        model: Maps raw (B, C, H, W) tiles (NaN = nodata) to logits (B, 1 + classes, H, W);
            it normalizes them itself (e.g. a :class:`GlacierSegmenter`). Or the members of an
            ensemble (``settings.temperatures`` has one temperature per member): every member's
            passes feed the same statistics, averaged in float64.
        jobs: The scenes, in order (opened lazily, as the read-ahead reaches them).
        settings: Tile layout, device, precision, MC passes, output encoding.
        on_done: Called on the writer thread once a scene's maps are final (COGs in place),
            with the scene's job, its open reader and its outputs.
        progress: Show a progress bar.
        on_maps: Called, on a thread of its own, as soon as a scene's maps are streamed: with
            its job, reader, final outputs and the streamed files (the same pixels), which it
            may read while the writer thread builds the COGs from them (``on_done`` follows
            when both are done). Work on the maps' pixels (polygons, scores) goes here.

    Returns:
        Each scene's outputs, in order.
    """
    return PredictionLoop(model, settings, on_done, on_maps).run(jobs, progress)


def predict_scene(
    model: nn.Module,
    reader: SceneReader,
    *,
    channel_indices: list[int],
    class_names: list[str],
    out_prefix: Path,
    tile_size: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
    mc_samples: int = 0,
    tta: int = 1,
    seed: int = 42,
    temperature: float = 1.0,
    uncertainty: tuple[str, ...] | None = None,
    score_measures: bool = False,
    device: str | torch.device = "cpu",
    channels_last: bool = True,
    probabilities: str = "percent",
    precision: torch.dtype | None = None,
    cog: bool = True,
    progress: bool = False,
) -> PredictionOutputs:
    """Predict one open scene and write class, probability and uncertainty COGs.

    Args:
        model: See :func:`predict_scenes`.
        reader: The open scene (its grid is the output grid); left open.
        channel_indices: Reader channels fed to the model, in order.
        class_names: Predicted classes (output 0 is background).
        out_prefix: Output path prefix; ``_classes.tif`` etc. are appended.
        tile_size: Tile edge in pixels.
        overlap: Pixels shared by neighbouring tiles (blended).
        batch_size: Tiles per forward pass.
        mc_samples: MC-dropout passes (0 = deterministic).
        tta: Dihedral views averaged per tile.
        seed: Seed of the MC-dropout draws.
        temperature: Divides the logits of every pass.
        uncertainty: Measures written to ``_uncertainty.tif`` (None: the default measure when
            there are several passes per pixel).
        score_measures: Also write every measure to ``_uncertainty_measures.tif``.
        device: Torch device.
        channels_last: Use the channels-last memory format.
        probabilities: ``percent`` (uint8 0–100, nodata 255) or ``float32`` (nodata NaN).
        precision: Autocast dtype (None = float32).
        cog: Publish Cloud-Optimized GeoTIFFs (else the streamed tiled GeoTIFFs).
        progress: Show a progress bar.

    Returns:
        Paths of the written files.
    """
    settings = PredictSettings(
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        mc_samples=mc_samples,
        tta=tta,
        seed=seed,
        temperatures=(temperature,),
        uncertainty=uncertainty,
        score_measures=score_measures,
        device=torch.device(device),
        precision=precision,
        probabilities=probabilities,
        channels_last=channels_last,
        cog=cog,
    )
    names = [reader.band_names[i] for i in channel_indices]
    job = SceneJob(reader.scene.id, lambda: reader, names, class_names, out_prefix, False)
    return predict_scenes(model, [job], settings, progress=progress)[0]
