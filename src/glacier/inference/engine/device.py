"""Where and how prediction runs: ``device=auto|cpu|cuda|cuda:N``, ``precision=...``, defaults.

Every choice is resolved once, up front, with a one-line error for an impossible one
(``device=cuda`` without a GPU, ``precision=fp16`` on a CPU).
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext

import torch

from glacier.errors import GlacierConfigError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BATCH, GPU_BATCH = 4, 16  # tiles of 512² per forward pass
MAX_GPU_BATCH = 64  # past this, a bigger batch no longer speeds a GPU's forward up
MEMORY_SHARE = 0.5  # of the free device memory, for the forward (the rest: rows, sums, others)
MAX_READERS = 4


def resolve_device(spec: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N`` as a torch device.

    Raises:
        GlacierConfigError: For an unknown spec or a GPU that is not there.
    """
    spec = str(spec).strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise GlacierConfigError(
                f"device={spec}: no CUDA GPU is visible to this process; use device=cpu or "
                "device=auto"
            )
        device = torch.device(spec)
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise GlacierConfigError(
                f"device={spec}: this machine has {count} GPU(s), 0-{count - 1}"
            )
        return device
    raise GlacierConfigError(f"device={spec!r}: use auto, cpu, cuda or cuda:N")


def resolve_precision(spec: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision=auto|fp32|bf16|fp16`` on ``device`` (None = fp32).

    ``auto`` is bf16 on GPUs that support it and fp32 everywhere else.

    Raises:
        GlacierConfigError: For an unknown precision or fp16 on a CPU.
    """
    spec = str(spec).strip().lower()
    if spec == "auto":
        cuda = device.type == "cuda"
        return torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else None
    if spec not in PRECISIONS:
        raise GlacierConfigError(f"precision={spec!r}: use auto, fp32, bf16 or fp16")
    if spec == "fp16" and device.type != "cuda":
        raise GlacierConfigError("precision=fp16 needs a GPU; on a CPU use fp32 or bf16")
    return PRECISIONS[spec]


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32``, ``bf16`` or ``fp16``."""
    return next(name for name, value in PRECISIONS.items() if value == dtype)


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager[object]:
    """Autocast to ``dtype`` on ``device`` (nothing for fp32)."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def default_batch_size(device: torch.device, spec: int | str = "auto") -> int:
    """Tiles per forward pass: ``auto`` is 4 on a CPU and 16 on a GPU.

    Raises:
        GlacierConfigError: For a non-positive size.
    """
    if spec == "auto":
        return GPU_BATCH if device.type == "cuda" else CPU_BATCH
    if not isinstance(spec, int) or isinstance(spec, bool) or spec < 1:
        raise GlacierConfigError(f"batch_size={spec!r}: use auto or an integer >= 1")
    return spec


def batch_for_memory(
    free_bytes: int, tile_bytes: int, share: float = MEMORY_SHARE, most: int = MAX_GPU_BATCH
) -> int:
    """Tiles per forward pass that fit in ``share`` of the free device memory.

    Args:
        free_bytes: Free device memory (``torch.cuda.mem_get_info``'s first number).
        tile_bytes: Peak memory one tile's forward pass needs (:func:`tile_memory`).
        share: Part of the free memory the forward may take.
        most: Upper bound.

    Returns:
        A batch size in ``[1, most]``.
    """
    if tile_bytes <= 0:
        return most
    return max(1, min(most, int(free_bytes * share) // tile_bytes))


def tile_memory(
    model: torch.nn.Module,
    channels: int,
    tile: int,
    device: torch.device,
    precision: torch.dtype | None,
) -> int:
    """Peak CUDA memory of one tile's forward pass, measured by running one (zeros) tile.

    The peak above what was allocated before it: activations, the logits and their softmax.
    """
    model = model.to(device).eval()
    image = torch.zeros((1, channels, tile, tile), device=device)
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode(), autocast(device, precision):
        model(image).float().softmax(dim=1)
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - before)


def memory_batch_size(
    model: torch.nn.Module,
    channels: int,
    tile: int,
    device: torch.device,
    precision: torch.dtype | None,
) -> int:
    """``batch_size: auto`` on a GPU: as many tiles as fit in half its free memory (<= 64)."""
    tile_bytes = tile_memory(model, channels, tile, device, precision)
    free, _ = torch.cuda.mem_get_info(device)
    return batch_for_memory(free, tile_bytes)


def default_readers(device: torch.device, spec: int | str = "auto") -> int:
    """Reader threads: ``auto`` is 1 on a CPU (the model needs the cores) and up to 4 on a GPU.

    Raises:
        GlacierConfigError: For a non-positive count.
    """
    if spec == "auto":
        if device.type != "cuda":
            return 1
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
        return max(1, min(MAX_READERS, cpus - 1))
    if not isinstance(spec, int) or isinstance(spec, bool) or spec < 1:
        raise GlacierConfigError(f"readers={spec!r}: use auto or an integer >= 1")
    return spec
