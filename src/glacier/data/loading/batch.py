"""Turn raw batches into model inputs on the device: channel/class selection, nodata, targets.

Loader workers only read bytes (windows of the stored arrays, in their stored dtypes, channels
last); everything else runs here as batched tensor ops on whatever device the batch is on:
casting to float32, picking the model's channels, marking nodata (NaN in the image, the ignore
label in the target) and building class targets. The image comes out as NCHW in the
channels-last memory format (a free view of the stored channels-last layout).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from glacier.data.contract import (
    IGNORE_INDEX,
    DatasetContract,
    NodataRule,
    StorageGroup,
    storage_groups,
)

LABEL_KEY = "label"


@dataclass(frozen=True)
class BatchLayout:
    """Where each selected channel and class lives in a raw batch.

    Attributes:
        groups: Batch key of each storage group.
        sources: Per selected channel: (group number, offset inside the group).
        float_groups: Groups stored as floats (they can hold NaN).
        class_channels: Label channel of each selected class (target ``i + 1``).
        all_zero: A pixel zero in every stored channel is nodata.
        qa_source: (group number, offset) of the QA band when its flags mean nodata.
        qa_tests: The QA bit tests (:meth:`glacier.data.contract.QaMask.tests`).
    """

    groups: tuple[str, ...]
    sources: tuple[tuple[int, int], ...]
    float_groups: tuple[int, ...]
    class_channels: tuple[int, ...]
    all_zero: bool
    qa_source: tuple[int, int] | None = None
    qa_tests: tuple[tuple[int, int, int], ...] = ()

    @classmethod
    def of(
        cls, contract: DatasetContract, channels: Sequence[str], classes: Sequence[str]
    ) -> BatchLayout:
        """The layout for a contract and a channel/class selection."""
        groups = storage_groups(contract.channels)
        position = {
            channel: (number, offset)
            for number, group in enumerate(groups)
            for offset, channel in enumerate(group.channels)
        }
        names = contract.channel_names
        qa = contract.nodata.qa
        return cls(
            groups=tuple(group.key for group in groups),
            sources=tuple(position[names.index(c)] for c in channels),
            float_groups=tuple(i for i, g in enumerate(groups) if g.dtype.startswith("float")),
            class_channels=tuple(contract.classes.index(c) for c in classes),
            all_zero=contract.nodata.all_zero,
            qa_source=None if qa is None else position[names.index(qa.band)],
            qa_tests=() if qa is None else qa.tests(),
        )

    @classmethod
    def grouped_as(
        cls,
        contract: DatasetContract,
        groups: Sequence[StorageGroup],
        channels: Sequence[str],
        classes: Sequence[str],
    ) -> BatchLayout:
        """The layout of batches whose channels are grouped as ``groups`` (a cache's dtypes)."""
        dtypes = {c: group.dtype for group in groups for c in group.channels}
        stored = tuple(replace(ch, dtype=dtypes[i]) for i, ch in enumerate(contract.channels))
        return cls.of(replace(contract, channels=stored), channels, classes)

    @property
    def keys(self) -> set[str]:
        """Every key of a raw batch of this layout."""
        return {*self.groups, LABEL_KEY}

    def invalid(self, batch: Mapping[str, Tensor]) -> Tensor:
        """(B, H, W) nodata pixels: labelled so, non-finite, or all-zero if the rule says so."""
        invalid = batch[LABEL_KEY][..., 0] == IGNORE_INDEX
        for number in self.float_groups:
            invalid |= ~torch.isfinite(batch[self.groups[number]]).all(dim=-1)
        if self.all_zero:
            invalid |= NodataRule.zero_pixels([batch[key] for key in self.groups])
        if self.qa_source is not None:
            invalid |= self.qa_flagged(batch)
        return invalid

    def qa_flagged(self, batch: Mapping[str, Tensor]) -> Tensor:
        """(B, H, W) pixels the QA band flags (the same bit tests as the scene reader)."""
        assert self.qa_source is not None
        number, offset = self.qa_source
        values = batch[self.groups[number]][..., offset]
        codes = torch.nan_to_num(values.float(), nan=0.0, posinf=0.0, neginf=0.0).to(torch.int64)
        flagged = torch.zeros(codes.shape, dtype=torch.bool, device=codes.device)
        for first, width, minimum in self.qa_tests:
            flagged |= ((codes >> first) & ((1 << width) - 1)) >= minimum
        return flagged

    def image(self, batch: Mapping[str, Tensor], invalid: Tensor) -> Tensor:
        """(B, C, H, W) float32 image of the selected channels (channels-last), NaN at nodata."""
        reference = batch[self.groups[0]]
        shape = (*reference.shape[:3], len(self.sources))
        image = torch.empty(shape, dtype=torch.float32, device=reference.device)
        for out, (number, offset) in enumerate(self.sources):
            image[..., out] = batch[self.groups[number]][..., offset]
        image[invalid] = float("nan")
        return image.permute(0, 3, 1, 2)

    def target(self, batch: Mapping[str, Tensor], invalid: Tensor) -> Tensor:
        """(B, H, W) int64 targets: 0 background, ``i + 1`` for the i-th class, 255 nodata.

        A later class wins where selected classes overlap (e.g. ``glacier`` then ``debris``);
        classes not selected become background.
        """
        label = batch[LABEL_KEY]
        target = torch.zeros(label.shape[:3], dtype=torch.int64, device=label.device)
        for position, channel in enumerate(self.class_channels, start=1):
            target[label[..., channel] == 1] = position
        target[invalid] = IGNORE_INDEX
        return target

    def assemble(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The model image and target of a raw batch."""
        invalid = self.invalid(batch)
        return self.image(batch, invalid), self.target(batch, invalid)
