"""Landsat quality bands: which pixels a scene's QA band flags as cloud or cloud shadow.

Landsat 4–7 Collection 1 Level-1 scenes carry a bit-packed quality band (``BQA``; the HKH
release keeps it as its tenth band). Bits, least significant first (USGS, Landsat Collection 1
Level-1 Quality Assessment Band):

- bit 0: designated fill
- bit 4: cloud
- bits 5–6: cloud confidence (0 not determined, 1 low, 2 medium, 3 high)
- bits 7–8: cloud shadow confidence
- bits 9–10: snow/ice confidence

A pixel is flagged when any requested condition reaches the requested confidence; flagged
pixels become nodata in preprocessing and prediction, so a clouded glacier is reported as
unobserved instead of lost. Snow/ice confidence is decoded but never masks anything by default:
on glaciers it is the signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from glacier.errors import GlacierInputError

CONFIDENCE = {"low": 1, "medium": 2, "high": 3}
# condition -> (first bit, number of bits); one-bit flags count as "high" when set
QA_BITS: dict[str, tuple[int, int]] = {
    "fill": (0, 1),
    "cloud": (4, 1),
    "cloud_confidence": (5, 2),
    "cloud_shadow": (7, 2),
    "snow_ice": (9, 2),
}
DEFAULT_FLAGS = ("fill", "cloud", "cloud_shadow")


def qa_field(qa: np.ndarray, name: str) -> np.ndarray:
    """The value of one QA field (0–3 for two-bit confidences, 0–1 for one-bit flags).

    Args:
        qa: QA band values (integers; floats holding integers, as the release stores them).
        name: A key of :data:`QA_BITS`.

    Returns:
        The field per pixel (uint16); 0 where the QA value is not finite.
    """
    if name not in QA_BITS:
        raise GlacierInputError(f"unknown QA field {name!r}; known: {sorted(QA_BITS)}")
    first, width = QA_BITS[name]
    values = np.nan_to_num(np.asarray(qa, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return ((values.astype(np.uint32) >> first) & ((1 << width) - 1)).astype(np.uint16)


@dataclass(frozen=True)
class QaMask:
    """Which QA conditions make a pixel nodata.

    Attributes:
        band: Name of the QA band among the scene's bands (``BQA``).
        flags: Conditions to mask: ``fill``, ``cloud`` (cloud bit or cloud confidence),
            ``cloud_shadow``, ``snow_ice``.
        confidence: Lowest confidence that counts (``low``, ``medium`` or ``high``).
    """

    band: str
    flags: tuple[str, ...] = DEFAULT_FLAGS
    confidence: str = "medium"

    def __post_init__(self) -> None:
        unknown = [f for f in self.flags if f not in ("fill", "cloud", "cloud_shadow", "snow_ice")]
        if unknown or not self.flags:
            raise GlacierInputError(
                f"data.qa_mask {list(self.flags)}: choose among fill, cloud, cloud_shadow, snow_ice"
            )
        if self.confidence not in CONFIDENCE:
            raise GlacierInputError(
                f"data.qa_confidence={self.confidence!r}: one of {sorted(CONFIDENCE)}"
            )

    def tests(self) -> tuple[tuple[int, int, int], ...]:
        """The bit tests that flag a pixel: (first bit, width, lowest value that flags).

        One definition for NumPy (:meth:`flagged`) and for batches on a device.
        """
        level = CONFIDENCE[self.confidence]
        tests: list[tuple[int, int, int]] = []
        for flag in self.flags:
            if flag == "fill":
                tests.append((*QA_BITS["fill"], 1))
            elif flag == "cloud":
                tests += [(*QA_BITS["cloud"], 1), (*QA_BITS["cloud_confidence"], level)]
            else:
                tests.append((*QA_BITS[flag], level))
        return tuple(tests)

    def flagged(self, qa: np.ndarray) -> np.ndarray:
        """True where the QA band flags a pixel.

        Args:
            qa: The QA band's values for a window (NaN: not flagged; nodata already).
        """
        values = np.nan_to_num(np.asarray(qa, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        codes = values.astype(np.uint32)
        out = np.zeros(codes.shape, dtype=bool)
        for first, width, minimum in self.tests():
            out |= ((codes >> first) & ((1 << width) - 1)) >= minimum
        return out

    def check_band(self, band_names: Sequence[str], where: str) -> int:
        """The QA band's position among ``band_names``.

        Raises:
            GlacierInputError: Naming the scene when it has no such band.
        """
        if self.band not in band_names:
            raise GlacierInputError(
                f"{where}: data.qa_band={self.band!r} is not one of its bands {list(band_names)}"
            )
        return list(band_names).index(self.band)
