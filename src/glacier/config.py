"""OmegaConf resolvers and small helpers shared by the Hydra entry points."""

from __future__ import annotations

from omegaconf import OmegaConf

from glacier.data.sources import sample_path


def register_resolvers() -> None:
    """Register ``${glacier_sample:NAME}`` (a file of the embedded real sample).

    Safe to call more than once.
    """
    if not OmegaConf.has_resolver("glacier_sample"):
        OmegaConf.register_new_resolver("glacier_sample", sample_path)
