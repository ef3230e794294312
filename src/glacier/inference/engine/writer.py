"""GeoTIFF outputs of full-scene prediction: class map, probabilities, uncertainty measures.

Files are written under hidden ``.partial`` names; when the whole scene is done each is turned
into a Cloud-Optimized GeoTIFF with overviews (still under a hidden name) and only then renamed
into place, so an interrupted run never leaves a truncated or non-COG map under a final name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import rasterio
from rasterio.windows import Window

from glacier.data.contract import BACKGROUND, IGNORE_INDEX
from glacier.data.raster import SceneReader
from glacier.inference.engine.cog import RESAMPLING_CATEGORICAL, RESAMPLING_CONTINUOUS, to_cog
from glacier.inference.engine.encode import NODATA_PERCENT, EncodedRows
from glacier.inference.engine.outputs import PredictionOutputs, UncertaintyBands

BLOCK = 256
PROBABILITY_FORMATS = ("percent", "float32")


def _profile(reader: SceneReader, count: int, dtype: str, nodata: float) -> dict[str, Any]:
    tiled = reader.width >= BLOCK and reader.height >= BLOCK
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": reader.width,
        "height": reader.height,
        "count": count,
        "dtype": dtype,
        "nodata": nodata,
        "crs": reader.crs,
        "transform": reader.transform,
        # ZSTD level 1: as small as deflate here at ~3x its speed; GDAL >= 2.3 and QGIS read it
        "compress": "zstd",
        "zstd_level": 1,
        "predictor": 2 if dtype == "uint8" else 3,
        "tiled": tiled,
        "BIGTIFF": "IF_SAFER",
    }
    if tiled:
        profile |= {"blockxsize": BLOCK, "blockysize": BLOCK}
    return profile


class OutputWriter:
    """Write blended predictions of a scene, block row by block row, then publish the files.

    Args:
        outputs: Final paths.
        reader: The scene (its grid is the output grid).
        class_names: Predicted classes (band 1 of the probabilities is ``background``).
        probabilities: ``percent`` (uint8 0–100, nodata 255; a quarter of the bytes, and about a
            sixth of the file of ``float32``) or ``float32`` (nodata NaN).
        cog: Publish Cloud-Optimized GeoTIFFs with overviews (else the streamed tiled
            GeoTIFFs, a few seconds sooner per full Landsat scene).
        bands: The measures of the uncertainty files and their passes.
    """

    def __init__(
        self,
        outputs: PredictionOutputs,
        reader: SceneReader,
        class_names: list[str],
        probabilities: str = "percent",
        cog: bool = True,
        bands: UncertaintyBands | None = None,
    ) -> None:
        if probabilities not in PROBABILITY_FORMATS:
            raise ValueError(
                f"probabilities must be one of {list(PROBABILITY_FORMATS)}, got {probabilities!r}"
            )
        self.outputs = outputs
        self.reader = reader
        self.names = [BACKGROUND, *class_names]
        self.percent = probabilities == "percent"
        self.cog = cog
        self.bands = bands or UncertaintyBands()
        if bool(outputs.uncertainty) != bool(self.bands.written) or bool(outputs.measures) != bool(
            self.bands.scored
        ):
            raise ValueError(f"uncertainty files {outputs} do not match their bands {self.bands}")
        maps = (
            outputs.classes,
            outputs.probs,
            outputs.uncertainty,
            outputs.measures,
            outputs.passes,
        )
        final = [p for p in maps if p]
        self.partial = {p: p.with_name(f".{p.stem}.partial.tif") for p in final}
        self.files: dict[str, Any] = {}
        self._stack = ExitStack()

    def _open(self, path: Path, count: int, dtype: str, nodata: float) -> Any:
        profile = _profile(self.reader, count, dtype, nodata)
        return self._stack.enter_context(rasterio.open(self.partial[path], "w", **profile))

    def __enter__(self) -> OutputWriter:
        self.outputs.classes.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.files["classes"] = self._open(self.outputs.classes, 1, "uint8", IGNORE_INDEX)
            probs = (
                self._open(self.outputs.probs, len(self.names), "uint8", NODATA_PERCENT)
                if self.percent
                else self._open(self.outputs.probs, len(self.names), "float32", float("nan"))
            )
            self.files["probs"] = probs
            for index, name in enumerate(self.names, start=1):
                probs.set_band_description(index, name)
            if self.percent:
                probs.units = ["%"] * len(self.names)
            extra = (
                ("uncertainty", self.outputs.uncertainty, list(self.bands.written)),
                ("measures", self.outputs.measures, self.bands.measure_names()),
            )
            for key, path, names in extra:
                if path:
                    self.files[key] = self._open(path, len(names), "float32", float("nan"))
                    self.bands.describe(self.files[key], names)
            if self.outputs.passes:
                self._open_passes(self.outputs.passes, self.outputs.pass_count)
        except BaseException:
            self._discard()
            raise
        return self

    def _open_passes(self, path: Path, count: int) -> None:
        """``_passes.tif``: band ``i`` is the class map of MC pass ``i``."""
        passes = self._open(path, count, "uint8", IGNORE_INDEX)
        self.files["passes"] = passes
        for index in range(1, count + 1):
            passes.set_band_description(index, f"pass {index}")
        passes.update_tags(passes=count, classes=",".join(self.names))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close_streams()
            self.publish()
        else:
            self._discard()

    def close_streams(self) -> PredictionOutputs:
        """Finish the streamed files; outputs naming them (their pixels are the final maps').

        What reads pixels (polygons, scores) may read these while :meth:`publish` builds the
        COGs from them, given that :meth:`publish` waits for it before removing them.
        """
        self._stack.close()  # flushes the last blocks
        outputs = self.outputs

        def streamed(path: Path | None) -> Path | None:
            return self.partial[path] if path else None

        return replace(
            outputs,
            classes=self.partial[outputs.classes],
            probs=self.partial[outputs.probs],
            uncertainty=streamed(outputs.uncertainty),
            measures=streamed(outputs.measures),
            passes=streamed(outputs.passes),
        )

    def publish(self, readers_done: Callable[[], object] | None = None) -> None:
        """Turn the streamed files into the final maps (COGs), then rename them into place.

        Args:
            readers_done: Waits until nothing reads the streamed files any more (called before
                the first of them is removed or renamed); None: nothing reads them.
        """
        try:
            self._publish(readers_done)
        finally:
            self._discard()

    @staticmethod
    def _cog_partial(path: Path) -> Path:
        return path.with_name(f".{path.stem}.cog.partial.tif")

    def _publish(self, readers_done: Callable[[], object] | None) -> None:
        """Turn every finished file into a COG under a hidden name, then rename them all."""
        if not self.cog:  # the streamed tiled GeoTIFFs as they are
            if readers_done is not None:
                readers_done()
            for path, partial in self.partial.items():
                os.replace(partial, path)
            return
        for path, partial in self.partial.items():
            categorical = path in (self.outputs.classes, self.outputs.passes)
            resampling = RESAMPLING_CATEGORICAL if categorical else RESAMPLING_CONTINUOUS
            to_cog(partial, self._cog_partial(path), resampling, block=BLOCK)
            if readers_done is None:
                partial.unlink()  # extra disk space: about one file at a time
        if readers_done is not None:  # the streamed files stay until their readers are done
            readers_done()
            for partial in self.partial.values():
                partial.unlink()
        for path in self.partial:
            os.replace(self._cog_partial(path), path)

    def _discard(self) -> None:
        self._stack.close()
        for path, partial in self.partial.items():
            partial.unlink(missing_ok=True)
            self._cog_partial(path).unlink(missing_ok=True)

    def write_rows(self, rows: EncodedRows) -> None:
        """Write encoded rows to every output (after waiting for their device copies).

        Args:
            rows: Class map, probabilities and uncertainty of finished rows.
        """
        rows.wait()
        height, width = rows.classes.shape
        window = Window(0, rows.top, width, height)
        self.files["classes"].write(rows.classes, 1, window=window)
        self.files["probs"].write(rows.probs, window=window)
        if rows.uncertainty is not None and "uncertainty" in self.files:
            self.files["uncertainty"].write(rows.uncertainty, window=window)
        if rows.measures is not None and "measures" in self.files:
            self.files["measures"].write(rows.measures, window=window)
        if rows.passes is not None and "passes" in self.files:
            self.files["passes"].write(rows.passes, window=window)
