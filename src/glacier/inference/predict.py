"""Full-scene prediction, pipelined: reader threads → device → writer thread, many scenes per call.

Rows of tiles are read ahead by reader threads (:mod:`glacier.inference.rows`); tiles are
batched across rows and across scenes, so the device sees full batches; the model (with its
normalization) runs under the chosen precision; blending, the winning class, probabilities and
MC-dropout uncertainty are computed on the device (:mod:`glacier.inference.blending`,
:mod:`glacier.inference.encode`); a writer thread writes finished row blocks, turns each scene's
files into COGs and runs the caller's per-scene work (polygons, metrics) while the device
already works on the next scene. Memory is bounded by a few rows of tiles per scene, not by the
scene. MC-dropout draws are seeded per (seed, scene, tile), so maps do not depend on the batch
size, the grouping of scenes or sharding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import rasterio
import torch
from torch import Tensor, nn
from tqdm import tqdm

from glacier.data.scene import SceneReader
from glacier.errors import GlacierInputError
from glacier.inference.blending import BlendStrip
from glacier.inference.device import autocast
from glacier.inference.encode import encode_block
from glacier.inference.outputs import BLOCK, OutputWriter, PredictionOutputs
from glacier.inference.rows import BufferPool, ReadAhead, Row, read_row, to_device
from glacier.inference.tiling import blend_weights, tile_starts
from glacier.models.mc_dropout import mc_dropout_moments

__all__ = ["PredictSettings", "PredictionOutputs", "SceneJob", "predict_scene", "predict_scenes"]


@dataclass(frozen=True)
class PredictSettings:
    """How to predict (resolved: see :mod:`glacier.inference.device`).

    Attributes:
        tile_size: Tile edge in pixels.
        overlap: Pixels shared by neighbouring tiles (blended).
        batch_size: Tiles per forward pass.
        mc_samples: MC-dropout passes (0 = deterministic, no uncertainty file).
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
            if settings.mc_samples > 0:
                return mc_dropout_moments(self.model, batch, settings.mc_samples, seeds)
            return self.model(batch).float().softmax(dim=1), None


class _Scene:
    """A scene in flight: its reader, tile layout, blending strip and output writer."""

    def __init__(self, job: SceneJob, settings: PredictSettings, classes: int) -> None:
        self.job = job
        self.reader = job.open()
        try:
            missing = [c for c in job.channels if c not in self.reader.band_names]
            if missing:
                raise GlacierInputError(
                    f"scene {job.key!r}: the checkpoint needs channels {missing}; the scene has "
                    f"{self.reader.band_names}"
                )
            self.channel_indices = [self.reader.band_names.index(c) for c in job.channels]
            tile, overlap = settings.tile_size, settings.overlap
            self.rows = tile_starts(self.reader.height, tile, overlap)
            self.cols = tile_starts(self.reader.width, tile, overlap)
            self.cover = self.cols[-1] + tile
            with_variance = settings.mc_samples > 0
            width, height = self.reader.width, self.reader.height
            self.strip = BlendStrip(classes, width, height, with_variance, BLOCK, settings.device)
            self.outputs = PredictionOutputs.at(job.out_prefix, with_uncertainty=with_variance)
            writer = OutputWriter(
                self.outputs, self.reader, job.class_names, settings.probabilities, settings.cog
            )
            self.writer = writer.__enter__()
        except BaseException:
            self.close_reader()
            raise
        self.rows_done = 0
        self.rows_flushed = 0

    def close_reader(self) -> None:
        if self.job.close_reader:
            self.reader.close()

    def abort(self, error: BaseException) -> None:
        """Discard the scene's partial files and close it."""
        self.writer.__exit__(type(error), error, error.__traceback__)
        self.close_reader()


class _Pipeline:
    """The loop of :func:`predict_scenes`, with its threads and the scenes in flight."""

    def __init__(self, model: nn.Module, settings: PredictSettings, on_done: SceneDone | None):
        self.settings = settings
        self.on_done = on_done
        self.predictor = TilePredictor(model, settings)
        device = settings.device
        self.weights = torch.from_numpy(blend_weights(settings.tile_size, settings.overlap))
        self.weights = self.weights.to(device)
        self.pool = BufferPool(pinned=device.type == "cuda")
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glacier-write")
        self.written: list[Future[None]] = []
        self.open: list[_Scene] = []
        self.done: list[PredictionOutputs] = []
        self.classes = 0

    def reads(self, jobs: Iterable[SceneJob]) -> Iterator[Callable[[], tuple[_Scene, Row]]]:
        """Row reads of every scene in order; a scene is opened when its first row is queued."""
        tile, device = self.settings.tile_size, self.settings.device
        for job in jobs:
            scene = _Scene(job, self.settings, 1 + len(job.class_names))
            self.open.append(scene)
            shape = (len(scene.reader.band_names), tile, scene.cover)
            for index, top in enumerate(scene.rows):
                buffer = self.pool.take(shape)

                def read(
                    s: _Scene = scene, i: int = index, t: int = top, b: Tensor = buffer
                ) -> tuple[_Scene, Row]:
                    host, valid = read_row(s.reader, s.channel_indices, t, tile, s.cover, b)
                    dev, dev_valid = torch.from_numpy(host), torch.from_numpy(valid)
                    row = Row(i, t, host, valid, dev, dev_valid, len(s.cols), b)
                    return s, to_device(row, device, self.stream)

                yield read

    def run(self, jobs: Iterable[SceneJob], progress: bool) -> list[PredictionOutputs]:
        """Predict every job's scene; returns their outputs in order.

        Datasets are opened inside one GDAL environment of this thread, so the writer thread
        may close them (a dataset opened without one carries a thread-bound environment).
        """
        with rasterio.Env():
            return self._run(jobs, progress)

    def _run(self, jobs: Iterable[SceneJob], progress: bool) -> list[PredictionOutputs]:
        settings = self.settings
        ahead = ReadAhead(self.reads(jobs), depth=settings.readers, threads=settings.readers)
        bar = tqdm(desc="predict", unit="tile", disable=not progress, leave=False)
        batch: list[tuple[_Scene, Row, int]] = []
        try:
            for scene, row in ahead:
                row.ready()
                for col in scene.cols:
                    batch.append((scene, row, col))
                    if len(batch) == settings.batch_size:
                        self.step(batch)
                        bar.update(len(batch))
                        batch = []
            if batch:
                self.step(batch)
                bar.update(len(batch))
            self.check_writes(wait=True)
        except BaseException as error:
            ahead.close()
            self.writes.shutdown(wait=True, cancel_futures=True)
            for scene in self.open:
                scene.abort(error)
            raise
        finally:
            bar.close()
        ahead.close()
        self.writes.shutdown(wait=True)
        return self.done

    def step(self, batch: list[tuple[_Scene, Row, int]]) -> None:
        """Predict one batch, blend it into its scenes, flush rows they finished."""
        size = self.settings.tile_size
        tiles = [row.device[:, :, col : col + size] for _, row, col in batch]
        seeds = [tile_seed(self.settings.seed, s.job.key, row.top, col) for s, row, col in batch]
        probs, variance = self.predictor(tiles, seeds)
        touched: list[_Scene] = []
        for index, (scene, row, col) in enumerate(batch):
            scene.strip.add(
                row.top,
                col,
                probs[index],
                None if variance is None else variance[index],
                row.device_valid[:, col : col + size],
                self.weights,
            )
            row.tiles_left -= 1
            if row.tiles_left == 0:
                self.release(row)
                scene.rows_done += 1
            if scene not in touched:
                touched.append(scene)
        for scene in touched:
            self.flush(scene)
        self.check_writes(wait=False)

    def release(self, row: Row) -> None:
        """Give a used row's buffer back (once its copy to the device is complete)."""
        if row.copied is not None:
            row.copied.synchronize()
        self.pool.give(row.buffer)

    def flush(self, scene: _Scene) -> None:
        """Encode the row blocks no later tile reaches and queue their writes."""
        percent = self.settings.probabilities == "percent"
        while scene.rows_flushed < scene.rows_done:
            index = scene.rows_flushed
            scene.rows_flushed += 1
            last = index == len(scene.rows) - 1
            blocks = scene.strip.pop_all() if last else scene.strip.pop_above(scene.rows[index + 1])
            for block in blocks:
                rows = encode_block(block, percent)
                self.written.append(self.writes.submit(scene.writer.write_rows, rows))
            if last:
                self.written.append(self.writes.submit(self.finish, scene))

    def finish(self, scene: _Scene) -> None:
        """Publish a scene's files (COGs), run the caller's per-scene work, close it."""
        scene.writer.__exit__(None, None, None)
        self.open.remove(scene)
        try:
            if self.on_done is not None:
                self.on_done(scene.job, scene.reader, scene.outputs)
        finally:
            scene.close_reader()
        self.done.append(scene.outputs)

    def check_writes(self, wait: bool) -> None:
        """Re-raise the first error of the writer thread (waiting for every write if asked)."""
        pending = []
        for future in self.written:
            if wait or future.done():
                future.result()
            else:
                pending.append(future)
        self.written = pending


def predict_scenes(
    model: nn.Module,
    jobs: Iterable[SceneJob],
    settings: PredictSettings,
    on_done: SceneDone | None = None,
    progress: bool = False,
) -> list[PredictionOutputs]:
    """Predict many scenes with one warm model, pipelined (see the module docstring).

    Args:
        model: Maps raw (B, C, H, W) tiles (NaN = nodata) to logits (B, 1 + classes, H, W);
            it normalizes them itself (e.g. a :class:`GlacierSegmenter`).
        jobs: The scenes, in order (opened lazily, as the read-ahead reaches them).
        settings: Tile layout, device, precision, MC passes, output encoding.
        on_done: Called on the writer thread once a scene's maps are final (COGs in place),
            with the scene's job, its open reader and its outputs.
        progress: Show a progress bar.

    Returns:
        Each scene's outputs, in order.
    """
    return _Pipeline(model, settings, on_done).run(jobs, progress)


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
        mc_samples: MC-dropout passes (0 = deterministic, no uncertainty file).
        seed: Seed of the MC-dropout draws.
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
        seed=seed,
        device=torch.device(device),
        precision=precision,
        probabilities=probabilities,
        channels_last=channels_last,
        cog=cog,
    )
    names = [reader.band_names[i] for i in channel_indices]
    job = SceneJob(reader.scene.id, lambda: reader, names, class_names, out_prefix, False)
    return predict_scenes(model, [job], settings, progress=progress)[0]
