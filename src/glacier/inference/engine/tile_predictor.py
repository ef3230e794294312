"""The model on its device: settings, scene jobs, per-tile MC seeds, batched forward passes.

Each batch of tiles gives the means over its passes (MC dropout × TTA views, for every member of
an ensemble) of the probabilities and of what the uncertainty measures need
(:mod:`glacier.models.uncertainty`). Members stay visible: :meth:`TilePredictor.member_stats`
gives each member's statistics, :meth:`TilePredictor.__call__` their float64 mean.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

from glacier.data.raster import SceneReader
from glacier.inference.engine.compiled import CompiledNetwork
from glacier.inference.engine.device import autocast
from glacier.inference.engine.outputs import PredictionOutputs
from glacier.models import (
    DEFAULT_MEASURE,
    Normalizer,
    Passes,
    PassStats,
    StatsNeeds,
    StatsSum,
    apply_view,
    mc_dropout_stats,
    mean_of_members,
    pass_stats,
    split_normalizer,
    tta_codes,
    undo_view,
    without_nodata,
)


@dataclass(frozen=True)
class PredictSettings:
    """How to predict (resolved: see :mod:`glacier.inference.engine.device`).

    Attributes:
        tile_size: Tile edge in pixels.
        overlap: Pixels shared by neighbouring tiles (blended).
        batch_size: Tiles per forward pass.
        mc_samples: MC-dropout passes (0 = deterministic).
        tta: Dihedral transforms averaged per tile (1 = none, 8 = every flip and rotation;
            see :mod:`glacier.models.tta`); each costs one more pass (or MC set).
        seed: Seed of the MC-dropout draws (the same for every member of an ensemble).
        temperatures: Per model (one, or one per ensemble member): divides the logits of its
            passes before the softmax (the checkpoint's).
        uncertainty: Measures written as the bands of ``_uncertainty.tif`` (see
            :data:`glacier.models.MEASURES`); None = the default measure when there are
            several passes per pixel, else no file; ``()`` = no file.
        score_measures: Also write every measure the passes define (``_uncertainty_measures.tif``,
            plus the uncalibrated confidence when the temperature is not 1), to score them.
        device: The model's device.
        precision: Autocast dtype, or None for float32.
        probabilities: ``percent`` (uint8 0–100, nodata 255) or ``float32`` (nodata NaN).
        readers: Reader threads (rows read ahead).
        channels_last: Use the channels-last memory format.
        cog: Publish Cloud-Optimized GeoTIFFs (else the streamed tiled GeoTIFFs).
        pass_maps: Also write the class map of every MC pass (``_passes.tif``, one band per
            pass, each averaged over the TTA views): what per-glacier intervals are summed from.
        compile: Run deterministic passes through ``torch.compile`` (see
            :mod:`glacier.inference.engine.compiled`; one warning and the plain network where
            it cannot compile).
    """

    tile_size: int = 512
    overlap: int = 64
    batch_size: int = 4
    mc_samples: int = 0
    tta: int = 1
    seed: int = 42
    temperatures: tuple[float, ...] = (1.0,)
    uncertainty: tuple[str, ...] | None = None
    score_measures: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: torch.dtype | None = None
    probabilities: str = "percent"
    readers: int = 1
    channels_last: bool = True
    cog: bool = True
    pass_maps: bool = False
    compile: bool = False

    @property
    def passes(self) -> Passes:
        """The passes averaged per pixel (every member's)."""
        return Passes.of_members(self.tta, self.mc_samples, self.temperatures)

    @property
    def written_measures(self) -> list[str]:
        """The bands of ``_uncertainty.tif`` (empty: no file)."""
        if self.uncertainty is None:
            return [DEFAULT_MEASURE] if self.passes.count > 1 else []
        return self.passes.check(list(self.uncertainty))

    @property
    def scored_measures(self) -> list[str]:
        """The bands of ``_uncertainty_measures.tif`` (empty: no file)."""
        return self.passes.available() if self.score_measures else []

    @property
    def scores_uncalibrated(self) -> bool:
        """Whether the measures file also holds the confidence without the temperature."""
        return self.score_measures and self.passes.scaled

    @property
    def needs(self) -> StatsNeeds:
        """The pass statistics the outputs need besides the probabilities."""
        names = [*self.written_measures, *self.scored_measures]
        needs = StatsNeeds.of(names, uncalibrated=self.scores_uncalibrated)
        return replace(needs, per_pass=self.pass_count if self.pass_maps else 0)

    @property
    def pass_count(self) -> int:
        """Bands of ``_passes.tif``: one per MC pass of every member (deterministic: one each)."""
        return max(self.mc_samples, 1) * len(self.temperatures)


@dataclass
class SceneJob:
    """One scene to map.

    Attributes:
        key: The scene's name (seeds its MC draws; names nothing on disk).
        open: Opens the scene's reader (called when the read-ahead reaches the scene).
        channels: The model's input channels, in order (names of the reader's channels).
        class_names: Predicted classes (output 0 is background).
        out_prefix: Output path prefix; ``_classes.tif`` etc. are appended.
        close_reader: Close the reader once the scene is done (False when the caller owns it).
    """

    key: str
    open: Callable[[], SceneReader]
    channels: list[str]
    class_names: list[str]
    out_prefix: Path
    close_reader: bool = True


SceneDone = Callable[[SceneJob, SceneReader, PredictionOutputs], None]
# (job, reader, the final outputs, the same maps as streamed): read them while COGs are built
SceneMaps = Callable[[SceneJob, SceneReader, PredictionOutputs, PredictionOutputs], None]


def tile_seed(seed: int, key: str, row: int, col: int) -> int:
    """The MC-dropout seed of one tile: stable across runs, batches, devices and shards."""
    digest = hashlib.blake2b(f"{seed}:{key}:{row}:{col}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**63 - 1)


def shared_normalizer(models: Sequence[nn.Module]) -> tuple[Normalizer | None, list[nn.Module]]:
    """The members' common leading normalizer and each one's network after it.

    When every member starts with a :class:`~glacier.models.Normalizer` of the same
    statistics (:func:`~glacier.models.split_normalizer`), the predictor normalizes the batch
    once, as it assembles it, and runs the rest of each member (every MC pass and view reuses
    the normalized batch: the same values the members would compute). Otherwise (None) each
    member normalizes the raw batch itself.
    """
    splits = [split_normalizer(model) for model in models]
    if not all(splits):
        return None, list(models)
    parts = [split for split in splits if split is not None]
    first = parts[0][0]
    same = all(
        torch.equal(n.shift, first.shift) and torch.equal(n.scale, first.scale) for n, _ in parts
    )
    return (first, [rest for _, rest in parts]) if same else (None, list(models))


class TilePredictor:
    """The models on their device with a reused batch buffer; tiles in, probabilities out.

    Args:
        models: One model, or the members of an ensemble (with the same classes); each maps raw
            (B, C, H, W) tiles (NaN = nodata) to logits and normalizes them itself.
        settings: Device, precision, MC passes, temperatures (one per model), memory format.
    """

    def __init__(self, models: nn.Module | Sequence[nn.Module], settings: PredictSettings) -> None:
        members = [models] if isinstance(models, nn.Module) else list(models)
        if len(members) != len(settings.temperatures):
            raise ValueError(f"{len(members)} models but {len(settings.temperatures)} temperatures")
        self.settings = settings
        models = [model.to(settings.device).eval() for model in members]
        self.format = torch.channels_last if settings.channels_last else torch.contiguous_format
        self.needs = settings.needs
        self._batch: Tensor | None = None
        self.normalizer, self.models = shared_normalizer(models)
        self.networks: list[Callable[[Tensor], Tensor]] = list(self.models)
        if settings.compile and settings.mc_samples > 0:
            warnings.warn(
                "compile=true compiles deterministic passes only: the MC-dropout passes run "
                "uncompiled (their seeded masks are hooks on the dropout layers)",
                RuntimeWarning,
                stacklevel=2,
            )
        elif settings.compile:
            self.networks = [CompiledNetwork(model) for model in self.models]

    def __call__(self, tiles: list[Tensor], seeds: list[int]) -> PassStats:
        """(B, K, h, w) float32 means of every pass's statistics (all members), on the device.

        Args:
            tiles: (C, h, w) raw tiles on the device (views of rows).
            seeds: One MC-dropout seed per tile.
        """
        return mean_of_members(self.member_stats(tiles, seeds))

    def member_stats(self, tiles: list[Tensor], seeds: list[int]) -> list[PassStats]:
        """Each member's means over its own passes (its temperature), in member order."""
        settings = self.settings
        shape = (len(tiles), *tiles[0].shape)
        if self._batch is None or tuple(self._batch.shape) != shape:
            self._batch = torch.empty(
                shape, dtype=torch.float32, device=settings.device, memory_format=self.format
            )
        batch = self._batch
        for index, tile in enumerate(tiles):
            if self.normalizer is None:
                batch[index].copy_(tile)
            else:  # normalized on the way into the batch: one pass over the pixels
                self.normalizer.into(tile, batch[index])
        if self.normalizer is not None:
            without_nodata(batch)
        members = range(len(self.models))
        with torch.inference_mode(), autocast(settings.device, settings.precision):
            if settings.tta <= 1:
                return [self._view_stats(member, batch, seeds) for member in members]
            return [self._tta_stats(member, batch, seeds) for member in members]

    def _view_stats(self, member: int, batch: Tensor, seeds: list[int]) -> PassStats:
        """One member's statistics of one view: its MC passes, or one (compiled) forward."""
        settings = self.settings
        temperature = settings.temperatures[member]
        if settings.mc_samples > 0:
            return mc_dropout_stats(
                self.models[member], batch, settings.mc_samples, seeds, temperature, self.needs
            )
        return pass_stats(self.networks[member](batch), temperature, self.needs)

    def _tta_stats(self, member: int, batch: Tensor, seeds: list[int]) -> PassStats:
        """Statistics averaged over the dihedral views (each view's mean, turned back)."""
        total = StatsSum()
        for code in tta_codes(self.settings.tta):
            view = self._view_stats(member, apply_view(batch, code), seeds)
            total.add(view.map(partial(undo_view, code=code)))
        return total.mean().map(lambda t: t.contiguous())
