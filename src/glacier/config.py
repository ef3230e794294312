"""OmegaConf resolvers and small helpers shared by the Hydra entry points."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from glacier.data.sources import sample_path
from glacier.errors import GlacierInputError


def gpu_precision() -> str:
    """Lightning precision for GPU training: ``bf16-mixed`` or ``16-mixed``.

    bfloat16 autocast where the GPU supports it (Ampere and newer), else float16 autocast with
    loss scaling.
    """
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "16-mixed"


def register_resolvers() -> None:
    """Register the ``glacier_sample`` and ``glacier_gpu_precision`` resolvers.

    ``${glacier_sample:NAME}`` is a file of the embedded real sample,
    ``${glacier_gpu_precision:}`` the precision of :func:`gpu_precision`.

    Safe to call more than once.
    """
    if not OmegaConf.has_resolver("glacier_sample"):
        OmegaConf.register_new_resolver("glacier_sample", sample_path)
    if not OmegaConf.has_resolver("glacier_gpu_precision"):
        OmegaConf.register_new_resolver("glacier_gpu_precision", gpu_precision)


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
