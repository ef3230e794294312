"""The nodata rule: which raw values mean "no data", and the one statement of the all-zero rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from glacier.data.contract.qa import QaMask

ArrayT = TypeVar("ArrayT")


@dataclass(frozen=True)
class NodataRule:
    """Which raw values mean "no data" (NaN and non-finite values always do).

    Attributes:
        value: A raw band value meaning nodata, for files that declare none (any band equal).
        all_zero: A pixel whose every channel is 0 is nodata (outside the scene in the HKH
            release; never a single channel at 0: snow gives ndvi 0, flat ground slope 0).
        qa: Pixels a Landsat QA band flags (cloud, cloud shadow...) are nodata (None: no QA).
    """

    value: float | None = None
    all_zero: bool = False
    qa: QaMask | None = None

    @staticmethod
    def zero_pixels(arrays: Sequence[ArrayT], axis: int = -1) -> ArrayT:
        """Pixels that are 0 in every channel of every array: nodata under ``all_zero``.

        The one statement of the all-zero rule, for NumPy arrays and PyTorch tensors alike
        (a NaN is not 0). Callers apply it where :attr:`all_zero` is set.

        Args:
            arrays: Channel stacks of the same pixels (e.g. one per storage group).
            axis: Their channel axis.

        Returns:
            A boolean array of the pixels, the channel axis removed.
        """
        zero: Any = None
        for array in arrays:
            here = (cast(Any, array) == 0).all(axis=axis)
            zero = here if zero is None else zero & here
        if zero is None:
            raise ValueError("zero_pixels needs at least one array")
        return cast(ArrayT, zero)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable plain dict (``qa`` only when set: older contracts are unchanged)."""
        rule: dict[str, Any] = {"value": self.value, "all_zero": self.all_zero}
        if self.qa is not None:
            rule["qa"] = {**vars(self.qa), "flags": list(self.qa.flags)}
        return rule

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodataRule:
        """Parse :meth:`to_dict` output (contracts without ``qa`` have none)."""
        qa = data.get("qa")
        return cls(
            value=data.get("value"),
            all_zero=bool(data.get("all_zero", False)),
            qa=None if qa is None else QaMask(qa["band"], tuple(qa["flags"]), qa["confidence"]),
        )
