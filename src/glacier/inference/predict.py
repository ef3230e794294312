"""Full-scene prediction: sliding window, blended tiles, MC dropout, windowed GeoTIFF output.

Tiles are predicted one row of tiles at a time; blended probabilities live only for the rows
not yet written (see :class:`glacier.inference.blending.BlendStrip`), so memory is bounded by
``classes × (tile + 256) × width`` whatever the scene height. Reading the next row of tiles
and compressing finished rows run in two helper threads while the model works.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from rasterio.windows import Window
from torch import nn
from tqdm import tqdm

from glacier.data.scene import SceneReader, finite_everywhere
from glacier.inference.blending import BlendStrip, BlockRows
from glacier.inference.outputs import BLOCK, OutputWriter, PredictionOutputs
from glacier.inference.tiling import blend_weights, tile_starts
from glacier.models.mc_dropout import mc_dropout_moments

__all__ = ["PredictionOutputs", "predict_scene"]


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Predictor:
    """Batch raw tiles and run the model (which normalizes them), optionally with MC dropout."""

    def __init__(
        self,
        model: nn.Module,
        mc_samples: int,
        seed: int,
        device: str,
        channels_last: bool,
    ) -> None:
        self.model = model.to(device).eval()
        self._batch: torch.Tensor | None = None
        self.mc_samples = mc_samples
        self.seed = seed
        self.device = device
        self.format = torch.channels_last if channels_last else torch.contiguous_format
        self.calls = 0

    def __call__(self, tiles: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, K, h, w) probabilities and MC variances (or None) for raw (C, h, w) tiles.

        The tiles (views into a row of the scene) are copied into a reused batch buffer in the
        model's memory format; the model normalizes them and imputes nodata.
        """
        shape = (len(tiles), *tiles[0].shape)
        if self._batch is None or tuple(self._batch.shape) != shape:
            self._batch = torch.empty(
                shape, dtype=torch.float32, device=self.device, memory_format=self.format
            )
        batch = self._batch
        for index, tile in enumerate(tiles):
            batch[index].copy_(torch.from_numpy(tile))
        self.calls += 1
        if self.mc_samples > 0:
            mean, variance = mc_dropout_moments(
                self.model, batch, self.mc_samples, seed=self.seed + self.calls
            )
            return mean.contiguous().cpu().numpy(), variance.contiguous().cpu().numpy()
        with torch.inference_mode():
            # back to NCHW in torch (multi-threaded): blending then reads contiguous rows
            probs = self.model(batch).softmax(dim=1).contiguous()
        return probs.cpu().numpy(), None


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
    seed: int = 42,
    device: str = "cpu",
    channels_last: bool = True,
    probabilities: str = "percent",
    progress: bool = False,
) -> PredictionOutputs:
    """Predict a whole scene and write class, probability and uncertainty GeoTIFFs.

    Args:
        model: Maps raw (B, C, H, W) tiles (NaN = nodata) to logits (B, 1 + classes, H, W);
            it normalizes them itself (e.g. a :class:`GlacierSegmenter`).
        reader: The open scene (its grid is the output grid).
        channel_indices: Reader channels fed to the model, in order.
        class_names: Predicted classes (output 0 is background).
        out_prefix: Output path prefix; ``_classes.tif`` etc. are appended.
        tile_size: Tile edge in pixels.
        overlap: Pixels shared by neighbouring tiles (blended).
        batch_size: Tiles per forward pass.
        mc_samples: MC-dropout passes (0 = deterministic, no uncertainty file).
        seed: Seed of the MC-dropout draws.
        device: Torch device.
        channels_last: Use the channels-last memory format.
        probabilities: ``percent`` (uint8 0–100, nodata 255) or ``float32`` (nodata NaN).
        progress: Show a progress bar.

    Returns:
        Paths of the written files.
    """
    outputs = PredictionOutputs.at(out_prefix, with_uncertainty=mc_samples > 0)
    predictor = _Predictor(model, mc_samples, seed, device, channels_last)
    with OutputWriter(outputs, reader, class_names, probabilities) as writer:
        _run_tiles(
            reader,
            predictor,
            writer,
            channel_indices,
            1 + len(class_names),
            (tile_size, overlap, batch_size),
            mc_samples > 0,
            progress,
        )
    return outputs


def _run_tiles(
    reader: SceneReader,
    predictor: _Predictor,
    writer: OutputWriter,
    channel_indices: list[int],
    num_outputs: int,
    layout: tuple[int, int, int],
    with_variance: bool,
    progress: bool,
) -> None:
    """Predict tile rows top to bottom, handing finished row blocks to a writer thread."""
    tile, overlap, batch_size = layout
    width, height = reader.width, reader.height
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    weights = blend_weights(tile, overlap)
    strip = BlendStrip(num_outputs, width, height, with_variance, BLOCK)
    bar = tqdm(total=len(rows) * len(cols), desc="predict", disable=not progress, leave=False)
    cover = cols[-1] + tile
    identity = channel_indices == list(range(len(reader.band_names)))
    # two row buffers, reused: one is read into while the model works on the other
    buffers = [np.empty((len(reader.band_names), tile, cover), np.float32) for _ in range(2)]

    def read_row(index: int) -> tuple[np.ndarray, np.ndarray]:
        # one windowed read per row of tiles (tiles share columns where they overlap)
        window = Window(0, rows[index], cover, tile)
        band, valid = reader.read_with_mask(window, out=buffers[index % 2])
        if not identity:  # the model's channels only; validity of those alone
            band = band[channel_indices]
            valid = finite_everywhere(band)
        return band, valid

    written: list[Future[None]] = []

    def flush(blocks: Iterator[BlockRows]) -> None:
        for block in blocks:
            written.append(writes.submit(writer.write_rows, block))

    # one writer thread: GeoTIFF windows are written in order
    with ThreadPoolExecutor(max_workers=1) as writes, ThreadPoolExecutor(max_workers=1) as reads:
        # read the next row of tiles while the model works on this one (GDAL releases the GIL)
        pending = reads.submit(read_row, 0)
        for index, row in enumerate(rows):
            band, valid_band = pending.result()
            if index + 1 < len(rows):
                pending = reads.submit(read_row, index + 1)
            flush(strip.pop_above(row))  # no later tile reaches above this row
            for batch in _batches(cols, batch_size):
                probs, variance = predictor([band[:, :, col : col + tile] for col in batch])
                for i, col in enumerate(batch):
                    strip.add(
                        row,
                        col,
                        probs[i],
                        None if variance is None else variance[i],
                        valid_band[:, col : col + tile],
                        weights,
                    )
                bar.update(len(batch))
        flush(strip.pop_all())
    bar.close()
    for future in written:
        future.result()  # re-raise any error of the writer thread
