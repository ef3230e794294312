"""Where the training cache goes: bytes needed against the memory free on the device and host.

``datamodule.cache``: ``device`` keeps the training and validation windows in tensors on the
training device, ``host`` in (pinned, with CUDA) host memory, ``none`` reads them with loader
workers as before, and ``auto`` takes the first that fits: the device when the bytes fit in
``cache_device_share`` of its free memory, else the host when they fit in ``cache_host_share``
of the available RAM (shared by the training processes of the machine), else workers. Under DDP
each rank holds every window when that fits, else a fixed shard of them (see
:mod:`glacier.data.loading.cached_loaders`). An explicit ``device`` or ``host`` is checked against
all the free memory (no share) and fails with one line when even a shard does not fit.

The memory probes are injectable (:class:`MemoryProbes`), so tests give small budgets.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from glacier.errors import GlacierInputError

CACHE_MODES = ("auto", "device", "host", "none")
GB = 1e9


def cuda_free_bytes(device: torch.device) -> int:
    """Free memory of a CUDA device (``torch.cuda.mem_get_info``)."""
    free, _ = torch.cuda.mem_get_info(device)
    return int(free)


def host_available_bytes(meminfo: Path = Path("/proc/meminfo")) -> int:
    """RAM available without swapping: ``MemAvailable`` (Linux), else free physical pages."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


@dataclass(frozen=True)
class MemoryProbes:
    """How free memory is measured (replaceable in tests).

    Attributes:
        device_free: Free bytes of a CUDA device.
        host_available: Available host RAM in bytes.
    """

    device_free: Callable[[torch.device], int] = cuda_free_bytes
    host_available: Callable[[], int] = host_available_bytes


@dataclass(frozen=True)
class CacheNeeds:
    """Bytes a rank would hold: every window, or its fixed shard (None: no shard possible)."""

    every: int
    shard: int | None = None


@dataclass(frozen=True)
class CacheChoice:
    """What ``datamodule.cache`` resolved to, and why.

    Attributes:
        placement: ``device``, ``host`` or ``none`` (loader workers).
        sharded: This rank holds a fixed shard of the windows, not all of them.
        needed: Bytes this rank holds (0 for ``none``).
        budget: Bytes it may hold where it was placed (the share of ``free``).
        free: Free memory where it was placed (or of the last place tried).
        level: Position in :data:`LEVELS` (``NONE_LEVEL`` for ``none``).
        reason: One line for the log.
    """

    placement: str
    sharded: bool = False
    needed: int = 0
    budget: int = 0
    free: int = 0
    level: int = 4  # NONE_LEVEL
    reason: str = field(default="", compare=False)


@dataclass(frozen=True)
class CacheRequest:
    """The settings that decide the placement.

    Attributes:
        mode: ``datamodule.cache``.
        device: The training device.
        device_share: Share of the device's free memory ``auto`` may fill.
        host_share: Share of available RAM ``auto`` may fill.
        ranks_per_node: Training processes sharing this machine's RAM.
    """

    mode: str
    device: torch.device
    device_share: float = 0.5
    host_share: float = 0.5
    ranks_per_node: int = 1

    def __post_init__(self) -> None:
        if self.mode not in CACHE_MODES:
            raise GlacierInputError(f"datamodule.cache={self.mode!r}: one of {CACHE_MODES}")
        for name, share in (("device", self.device_share), ("host", self.host_share)):
            if not 0 < share <= 1:
                raise GlacierInputError(f"datamodule.cache_{name}_share={share}: in (0, 1]")


# placements from the fastest to the last resort; ranks of a DDP run agree on the highest level
LEVELS = (("device", False), ("device", True), ("host", False), ("host", True))
NONE_LEVEL = len(LEVELS)


def _places(request: CacheRequest) -> list[str]:
    if request.mode == "auto":  # on a CPU the device's memory is the host's: one place
        return ["device", "host"] if request.device.type == "cuda" else ["device"]
    return [request.mode]


def _free(place: str, request: CacheRequest, probes: MemoryProbes) -> tuple[int, float]:
    """Free bytes of a place for this rank, and the share of them ``auto`` may use."""
    if place == "device" and request.device.type == "cuda":
        return probes.device_free(request.device), request.device_share
    share = request.host_share if place == "host" else request.device_share
    return probes.host_available() // max(request.ranks_per_node, 1), share


def _where(place: str, request: CacheRequest) -> str:
    return f"{place} ({request.device})" if place == "device" else "host"


def choose_cache(
    request: CacheRequest, needs: CacheNeeds, probes: MemoryProbes, min_level: int = 0
) -> CacheChoice:
    """Resolve ``datamodule.cache`` for this rank (see the module doc).

    Args:
        request: The settings.
        needs: Bytes of every window and of this rank's shard.
        probes: How free memory is measured.
        min_level: Skip placements before this one in :data:`LEVELS` (what other ranks chose).

    Returns:
        The placement and its reason.

    Raises:
        GlacierInputError: For an explicit ``device``/``host`` that even a shard overflows.
    """
    if request.mode == "none":
        return CacheChoice("none", reason="datamodule.cache=none: loader workers read windows")
    free, share = 0, 1.0
    for level, (place, sharded) in enumerate(LEVELS):
        needed = needs.shard if sharded else needs.every
        if place not in _places(request) or level < min_level or needed is None:
            continue
        free, share = _free(place, request, probes)
        budget = int(free * share) if request.mode == "auto" else free
        if needed <= budget:
            what = f"a shard of {needed / GB:.2f} GB" if sharded else f"{needed / GB:.2f} GB"
            reason = (
                f"training cache on {_where(place, request)}: {what} of windows (all "
                f"{needs.every / GB:.2f} GB), {free / GB:.2f} GB free, budget {budget / GB:.2f} GB"
            )
            return CacheChoice(place, sharded, needed, budget, free, level, reason)
    shard = f" ({needs.shard / GB:.2f} GB as a shard)" if needs.shard is not None else ""
    text = (
        f"the training windows need {needs.every / GB:.2f} GB{shard}, more than "
        f"{share if request.mode == 'auto' else 1:g} × the {free / GB:.2f} GB free on "
        f"{_where(_places(request)[-1], request)}"
    )
    if request.mode != "auto":
        raise GlacierInputError(
            f"datamodule.cache={request.mode}: {text}; use cache=auto, host or none"
        )
    return CacheChoice("none", free=free, reason=f"no training cache: {text}; loader workers")
