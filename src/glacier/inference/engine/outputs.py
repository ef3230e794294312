"""What full-scene prediction writes for a scene: the output paths and the uncertainty bands.

:class:`PredictionOutputs` names a scene's GeoTIFFs (and carries the overlay's samples taken while
the scene was read); :class:`UncertaintyBands` says what the uncertainty files hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glacier.data.raster import RgbSample
from glacier.inference import output_names as names
from glacier.inference.output_names import output_path
from glacier.models import MEASURES, UNCALIBRATED_CONFIDENCE, Passes

UNCALIBRATED_DESCRIPTION = "largest mean class probability without the temperature"


@dataclass
class PredictionOutputs:
    """GeoTIFFs written for one scene.

    Attributes:
        classes: ``_classes.tif``.
        probs: ``_probs.tif``.
        uncertainty: ``_uncertainty.tif`` (one band per written measure), or None.
        measures: ``_uncertainty_measures.tif`` (every measure the passes define, to score
            them against reference outlines), or None.
        passes: ``_passes.tif``, the class map of every MC pass (one band each), or None.
        pass_count: Its bands.
        preview: The scene's overlay samples, taken while the predictor read it (None: the
            products read them).
    """

    classes: Path
    probs: Path
    uncertainty: Path | None = None
    measures: Path | None = None
    passes: Path | None = None
    pass_count: int = 0
    preview: RgbSample | None = None

    @classmethod
    def at(
        cls, prefix: Path, with_uncertainty: bool, with_measures: bool = False, passes: int = 0
    ) -> PredictionOutputs:
        """The output paths for ``prefix`` (``_classes.tif`` etc. appended)."""

        def path(suffix: str, wanted: bool) -> Path | None:
            return output_path(prefix, suffix) if wanted else None

        return cls(
            classes=output_path(prefix, names.CLASSES),
            probs=output_path(prefix, names.PROBS),
            uncertainty=path(names.UNCERTAINTY, with_uncertainty),
            measures=path(names.MEASURES, with_measures),
            passes=path(names.PASSES, passes > 0),
            pass_count=passes,
        )


@dataclass(frozen=True)
class UncertaintyBands:
    """What the uncertainty files hold: measures per band and the passes they come from.

    Attributes:
        written: Bands of ``_uncertainty.tif``.
        scored: Bands of ``_uncertainty_measures.tif`` (before the uncalibrated confidence).
        uncalibrated: The measures file ends with the uncalibrated confidence.
        passes: Views, MC passes, members and temperatures (GDAL metadata of both files).
    """

    written: Sequence[str] = ()
    scored: Sequence[str] = ()
    uncalibrated: bool = False
    passes: Passes = field(default_factory=Passes)

    def measure_names(self) -> list[str]:
        """Band names of the measures file."""
        return [*self.scored, *([UNCALIBRATED_CONFIDENCE] if self.uncalibrated else [])]

    def describe(self, dataset: Any, names: Sequence[str]) -> None:
        """Band descriptions and GDAL metadata (measure, passes, views) of an open file."""
        passes = self.passes
        dataset.update_tags(
            passes=passes.count,
            views=passes.views,
            mc_samples=passes.mc_samples,
            members=passes.members,
            temperature=f"{passes.temperature:.6g}",
            member_temperatures=" ".join(f"{t:.6g}" for t in passes.member_temperatures),
            summary=passes.describe(),
        )
        for index, name in enumerate(names, start=1):
            dataset.set_band_description(index, name)
            measure = MEASURES.get(name)
            text = measure.description if measure else UNCALIBRATED_DESCRIPTION
            dataset.update_tags(index, measure=name, description=text)
