"""The model on its device: settings, scene jobs, per-tile MC seeds, batched forward passes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from glacier.data.raster import SceneReader
from glacier.inference.engine.device import autocast
from glacier.inference.engine.writer import PredictionOutputs
from glacier.models import apply_view, mc_dropout_moments, tta_codes, undo_view


@dataclass(frozen=True)
class PredictSettings:
    """How to predict (resolved: see :mod:`glacier.inference.engine.device`).

    Attributes:
        tile_size: Tile edge in pixels.
        overlap: Pixels shared by neighbouring tiles (blended).
        batch_size: Tiles per forward pass.
        mc_samples: MC-dropout passes (0 = deterministic, no uncertainty file).
        tta: Dihedral transforms averaged per tile (1 = none, 8 = every flip and rotation;
            see :mod:`glacier.models.tta`); each costs one more pass (or MC set).
        seed: Seed of the MC-dropout draws.
        device: The model's device.
        precision: Autocast dtype, or None for float32.
        probabilities: ``percent`` (uint8 0–100, nodata 255) or ``float32`` (nodata NaN).
        readers: Reader threads (rows read ahead).
        channels_last: Use the channels-last memory format.
        cog: Publish Cloud-Optimized GeoTIFFs (else the streamed tiled GeoTIFFs).
    """

    tile_size: int = 512
    overlap: int = 64
    batch_size: int = 4
    mc_samples: int = 0
    tta: int = 1
    seed: int = 42
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: torch.dtype | None = None
    probabilities: str = "percent"
    readers: int = 1
    channels_last: bool = True
    cog: bool = True


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


def tile_seed(seed: int, key: str, row: int, col: int) -> int:
    """The MC-dropout seed of one tile: stable across runs, batches, devices and shards."""
    digest = hashlib.blake2b(f"{seed}:{key}:{row}:{col}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**63 - 1)


class TilePredictor:
    """The model on its device with a reused batch buffer; tiles in, probabilities out.

    Args:
        model: Maps raw (B, C, H, W) tiles (NaN = nodata) to logits; normalizes them itself.
        settings: Device, precision, MC passes, memory format.
    """

    def __init__(self, model: nn.Module, settings: PredictSettings) -> None:
        self.settings = settings
        self.model = model.to(settings.device).eval()
        self.format = torch.channels_last if settings.channels_last else torch.contiguous_format
        self._batch: Tensor | None = None

    def __call__(self, tiles: list[Tensor], seeds: list[int]) -> tuple[Tensor, Tensor | None]:
        """(B, K, h, w) float32 probabilities and MC variances (or None), on the device.

        Args:
            tiles: (C, h, w) raw tiles on the device (views of rows).
            seeds: One MC-dropout seed per tile.
        """
        settings = self.settings
        shape = (len(tiles), *tiles[0].shape)
        if self._batch is None or tuple(self._batch.shape) != shape:
            self._batch = torch.empty(
                shape, dtype=torch.float32, device=settings.device, memory_format=self.format
            )
        batch = self._batch
        for index, tile in enumerate(tiles):
            batch[index].copy_(tile)
        with torch.inference_mode(), autocast(settings.device, settings.precision):
            if settings.tta <= 1:
                return self._moments(batch, seeds)
            return self._tta_moments(batch, seeds)

    def _moments(self, batch: Tensor, seeds: list[int]) -> tuple[Tensor, Tensor | None]:
        if self.settings.mc_samples > 0:
            return mc_dropout_moments(self.model, batch, self.settings.mc_samples, seeds)
        return self.model(batch).float().softmax(dim=1), None

    def _tta_moments(self, batch: Tensor, seeds: list[int]) -> tuple[Tensor, Tensor | None]:
        """Moments pooled over the dihedral views (law of total variance across views)."""
        codes = tta_codes(self.settings.tta)
        total = squares = variances = torch.zeros(0)
        for index, code in enumerate(codes):
            mean, variance = self._moments(apply_view(batch, code), seeds)
            mean = undo_view(mean, code)
            if index == 0:
                total, squares = mean.clone(), mean * mean
            else:
                total += mean
                squares.addcmul_(mean, mean)
            if variance is not None:
                variance = undo_view(variance, code)
                variances = variance.clone() if index == 0 else variances + variance
        mean = (total / len(codes)).contiguous()
        if self.settings.mc_samples <= 0:
            return mean, None
        spread = (squares / len(codes) - mean * mean).clamp_(min=0.0)
        return mean, (variances / len(codes) + spread).contiguous()
