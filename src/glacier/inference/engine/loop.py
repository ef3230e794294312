"""The prediction loop of :func:`~glacier.inference.engine.mapper.predict_scenes`.

Reader threads, the device and a writer thread, with several scenes in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from operator import itemgetter
from typing import Any

import rasterio
import torch
from torch import Tensor, nn
from tqdm import tqdm

from glacier.data.raster import RgbSample
from glacier.errors import GlacierInputError
from glacier.inference.engine.blending import BlendStrip
from glacier.inference.engine.encode import encode_block
from glacier.inference.engine.outputs import PredictionOutputs, UncertaintyBands
from glacier.inference.engine.readahead import BufferPool, ReadAhead, Row, read_row, to_device
from glacier.inference.engine.tile_predictor import (
    PredictSettings,
    SceneDone,
    SceneJob,
    SceneMaps,
    TilePredictor,
    tile_seed,
)
from glacier.inference.engine.tiling import blend_weights, tile_starts
from glacier.inference.engine.writer import BLOCK, OutputWriter


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
            width, height = self.reader.width, self.reader.height
            self.strip = BlendStrip(classes, width, height, settings.needs, BLOCK, settings.device)
            bands = UncertaintyBands(
                settings.written_measures,
                settings.scored_measures,
                settings.scores_uncalibrated,
                settings.passes,
            )
            self.outputs = PredictionOutputs.at(
                job.out_prefix,
                bool(bands.written),
                bool(bands.scored),
                settings.pass_count if settings.pass_maps else 0,
            )
            names = self.reader.scene.band_names
            self.outputs.preview = RgbSample.of(names, width, height)  # taken as rows are read
            writer = OutputWriter(
                self.outputs,
                self.reader,
                job.class_names,
                settings.probabilities,
                settings.cog,
                bands,
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


class PredictionLoop:
    """The loop of :func:`predict_scenes`, with its threads and the scenes in flight."""

    def __init__(
        self,
        model: nn.Module | Sequence[nn.Module],
        settings: PredictSettings,
        on_done: SceneDone | None,
        on_maps: SceneMaps | None = None,
    ):
        self.settings = settings
        self.on_done = on_done
        self.on_maps = on_maps
        self.side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glacier-maps")
        self.predictor = TilePredictor(model, settings)
        device = settings.device
        self.weights = torch.from_numpy(blend_weights(settings.tile_size, settings.overlap))
        self.weights = self.weights.to(device)
        self.pool = BufferPool(pinned=device.type == "cuda")
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glacier-write")
        self.written: list[Future[None]] = []
        self.write_error: BaseException | None = None  # the writer thread's first failure
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
                    preview = s.outputs.preview
                    host, valid = read_row(
                        s.reader, s.channel_indices, t, tile, s.cover, b, preview
                    )
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
            self.side.shutdown(wait=True, cancel_futures=True)
            for scene in self.open:
                scene.abort(error)
            raise
        finally:
            bar.close()
        ahead.close()
        self.writes.shutdown(wait=True)
        self.side.shutdown(wait=True)
        return self.done

    def step(self, batch: list[tuple[_Scene, Row, int]]) -> None:
        """Predict one batch, blend it into its scenes, flush rows they finished."""
        size = self.settings.tile_size
        tiles = [row.device[:, :, col : col + size] for _, row, col in batch]
        seeds = [tile_seed(self.settings.seed, s.job.key, row.top, col) for s, row, col in batch]
        stats = self.predictor(tiles, seeds)
        touched: list[_Scene] = []
        for index, (scene, row, col) in enumerate(batch):
            scene.strip.add(
                row.top,
                col,
                stats.map(itemgetter(index)),
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
        settings = self.settings
        percent = settings.probabilities == "percent"
        written, scored = settings.written_measures, settings.scored_measures
        while scene.rows_flushed < scene.rows_done:
            index = scene.rows_flushed
            scene.rows_flushed += 1
            last = index == len(scene.rows) - 1
            blocks = scene.strip.pop_all() if last else scene.strip.pop_above(scene.rows[index + 1])
            for block in blocks:
                rows = encode_block(block, percent, written, scored)
                self.written.append(self.writes.submit(self.write, scene, rows))
            if last:
                self.written.append(self.writes.submit(self.finish, scene))

    def write(self, scene: _Scene, rows: Any) -> None:
        """Write rows of a scene (writer thread); after a failed write, write nothing more."""
        if self.write_error is not None:
            return
        try:
            scene.writer.write_rows(rows)
        except BaseException as error:
            self.write_error = error
            raise

    def finish(self, scene: _Scene) -> None:
        """Publish a scene's files (COGs), run the caller's per-scene work, close it.

        ``on_maps`` (if given) runs on a thread of its own with the streamed maps while the COGs
        are built from them; ``on_done`` once they are in place.

        After a failed write nothing is published: the scene stays open, and the main thread,
        which re-raises the failure, discards it.
        """
        if self.write_error is not None:
            return
        maps = scene.writer.close_streams()
        if self.on_maps is None:
            scene.writer.publish()
        else:  # the caller reads the maps (polygons, scores) while their COGs are built
            reading = self.side.submit(self.on_maps, scene.job, scene.reader, scene.outputs, maps)
            try:
                scene.writer.publish(reading.result)
            except BaseException:
                wait([reading])  # nothing reads the scene's files once it is discarded
                raise
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
