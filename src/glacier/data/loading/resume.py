"""A training order that survives a restart: the same batches, in the same order, mid-epoch too.

Lightning resumes a checkpoint saved inside an epoch exactly only when the training loader is
stateful (``state_dict``/``load_state_dict``): it stores the loader's state in the checkpoint and
hands it back to the new loader, which must then carry on with the next batch. Otherwise it
starts the epoch's loader from the beginning and trains on the first batches again.
:class:`ResumableLoader` counts the batches it handed out in the current epoch; its sampler
(:class:`ShuffledOrder` for slices, :class:`~glacier.data.loading.sampling.EpochSampler` for
random windows) replays the interrupted epoch's order from the first batch not yet trained.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, cast

import torch
from torch.utils.data import DataLoader, Sampler


class Replayable(Protocol):
    """A sampler whose epoch order can be saved and replayed from a position."""

    def __len__(self) -> int:
        """Samples per epoch."""
        ...

    def state_dict(self) -> dict[str, int]:
        """What fixes the current epoch's order."""
        ...

    def replay(self, state: dict[str, int], start: int) -> None:
        """Make the next epoch the one of ``state``, from sample ``start`` on."""
        ...


def draw_seed() -> int:
    """One seed from torch's global generator, drawn as ``torch.utils.data.RandomSampler`` does."""
    return int(torch.empty((), dtype=torch.int64).random_().item())


class ShuffledOrder(Sampler[int]):
    """A new random order of ``length`` samples each epoch, that can be replayed.

    Each epoch draws its seed from torch's global generator when its first sample is asked for,
    exactly as ``RandomSampler`` does (so a seeded run trains on the same batches as with
    ``shuffle=True``), and remembers it.

    Args:
        length: Samples per epoch.
    """

    def __init__(self, length: int) -> None:
        self.length = length
        self.seed: int | None = None
        self._replay: tuple[int, int] | None = None

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        seed, start = self._replay if self._replay is not None else (draw_seed(), 0)
        self._replay = None
        self.seed = seed
        order = torch.randperm(self.length, generator=torch.Generator().manual_seed(seed))
        yield from order[start:].tolist()

    def state_dict(self) -> dict[str, int]:
        """The current epoch's seed (-1 before the first epoch)."""
        return {"seed": -1 if self.seed is None else self.seed}

    def replay(self, state: dict[str, int], start: int) -> None:
        """Replay the epoch of ``state`` from sample ``start`` (no new seed is drawn for it)."""
        if int(state["seed"]) >= 0:
            self._replay = (int(state["seed"]), start)


class ResumableLoader(DataLoader[Any]):
    """A training loader that Lightning can stop and resume inside an epoch.

    Its sampler must be :class:`Replayable`. ``state_dict`` says how many batches this epoch
    has handed out (batches go out only as the training loop asks for them: Lightning does not
    prefetch from a loader of known length); ``load_state_dict`` makes the next epoch continue
    after them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handed_out = 0
        self._resume_at = 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return self._count(super().__iter__())

    def _count(self, batches: Iterator[Any]) -> Iterator[Any]:
        self._handed_out, self._resume_at = self._resume_at, 0
        for batch in batches:
            self._handed_out += 1
            yield batch

    def _order(self) -> Replayable:
        return cast(Replayable, self.sampler)

    def state_dict(self) -> dict[str, Any]:
        """The epoch's order and the batches already handed out in it."""
        return {"order": self._order().state_dict(), "batches": self._handed_out}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the epoch of ``state`` after its ``batches`` batches."""
        batches = int(state["batches"])
        self._order().replay(dict(state["order"]), batches * int(self.batch_size or 1))
        self._resume_at = batches
