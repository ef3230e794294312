"""OmegaConf resolvers and small helpers shared by the Hydra entry points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf

from glacier.errors import GlacierInputError
from glacier.utils.cluster import on_rank_zero, rank_name, run_id

T = TypeVar("T")


def gpu_precision() -> str:
    """Lightning precision for GPU training: ``bf16-mixed`` or ``16-mixed``.

    bfloat16 autocast where the GPU supports it (Ampere and newer), else float16 autocast with
    loss scaling.
    """
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "16-mixed"


def if_cuda(on_gpu: Any, on_cpu: Any) -> Any:
    """``on_gpu`` when CUDA is available (``accelerator: auto`` picks the GPU), else ``on_cpu``."""
    import torch

    return on_gpu if torch.cuda.is_available() else on_cpu


GPU_ACCELERATORS = ("gpu", "cuda")


def on_gpu(accelerator: str, on_gpu: Any, on_cpu: Any) -> Any:
    """``on_gpu`` when a Trainer with this accelerator trains on a GPU, else ``on_cpu``.

    ``gpu``/``cuda`` always do (``trainer=gpu``), ``auto`` when CUDA is available. An
    experiment reads ``${trainer.accelerator}`` through it, so its settings follow the trainer
    it is combined with whatever order Hydra applies the two in.
    """
    if str(accelerator) in GPU_ACCELERATORS:
        return on_gpu
    return if_cuda(on_gpu, on_cpu) if str(accelerator) == "auto" else on_cpu


def sample_file(name: str) -> str:
    """A file of the embedded real sample (imports the data layer only when used)."""
    from glacier.data.spec import sample_path

    return sample_path(name)


RESOLVERS: dict[str, Callable[..., Any]] = {
    "glacier_sample": sample_file,
    "glacier_gpu_precision": gpu_precision,
    "glacier_if_cuda": if_cuda,
    "glacier_on_gpu": on_gpu,
    "glacier_rank_zero": on_rank_zero,
    "glacier_rank_name": rank_name,
    "glacier_run_id": run_id,
}


def register_resolvers() -> None:
    """Register glacier's OmegaConf resolvers (safe to call more than once).

    ``${glacier_sample:NAME}`` is a file of the embedded real sample,
    ``${glacier_gpu_precision:}`` the precision of :func:`gpu_precision`,
    ``${glacier_if_cuda:A,B}`` A with CUDA and B without, ``${glacier_on_gpu:ACCEL,A,B}`` A
    when a Trainer with accelerator ACCEL trains on a GPU and B otherwise;
    ``${glacier_rank_zero:X}``, ``${glacier_rank_name:NAME}`` and ``${glacier_run_id:DEFAULT}``
    tell the processes of a distributed run apart (:mod:`glacier.utils.cluster`).
    """
    for name, function in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)


def build(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets our own input errors through unwrapped.

    Hydra wraps constructor errors in ``InstantiationException``; a
    :class:`~glacier.errors.GlacierInputError` (bad file, unknown class, ...) is re-raised as
    itself so users and tests see its message, not Hydra's wrapper.

    Args:
        node: A config node with ``_target_``.
        **kwargs: Extra arguments for ``instantiate``.

    Returns:
        The built object.
    """
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, GlacierInputError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise


def _target_class(node: Any) -> type | None:
    """The class a node's ``_target_`` names (None: no target, a function, or unknown)."""
    target = node.get("_target_") if hasattr(node, "get") else None
    if not isinstance(target, str):
        return None
    try:
        located = get_object(target)
    except ImportError:
        return None  # build() reports it
    return located if isinstance(located, type) else None


def build_as(node: Any, cls: type[T], what: str, hint: str = "", **kwargs: Any) -> T:
    """:func:`build` a config node that must make a ``cls``; a wrong node fails at the door.

    A ``_target_`` naming another class is refused before anything is built (its mandatory
    keys and files are not looked at); what a factory function returns is checked after.

    Args:
        node: A config node with ``_target_``.
        cls: The class the caller needs.
        what: The config key, for the message (``data``).
        hint: What to give instead, appended to the message.
        **kwargs: Extra arguments for ``instantiate``.

    Returns:
        The built object.

    Raises:
        GlacierInputError: In one line, naming the key, its target and the class needed.
    """
    target = _target_class(node)
    if target is not None and not issubclass(target, cls):
        raise _wrong_class(what, node, target.__name__, cls, hint)
    built = build(node, **kwargs)
    if not isinstance(built, cls):
        raise _wrong_class(what, node, type(built).__name__, cls, hint)
    return built


def _wrong_class(what: str, node: Any, made: str, cls: type, hint: str) -> GlacierInputError:
    target = node.get("_target_") if hasattr(node, "get") else None
    message = f"{what} (_target_ {target}) makes a {made}, not a {cls.__name__}"
    return GlacierInputError(message + (f"; {hint}" if hint else ""))
