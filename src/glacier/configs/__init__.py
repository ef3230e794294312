"""Hydra configs shipped with glacier (``pkg://glacier.configs``).

Importing this package (Hydra does, for ``pkg://glacier.configs`` and
``initialize_config_module("glacier.configs")``) registers glacier's OmegaConf resolvers
(``${glacier_sample:...}`` and the rest, :mod:`glacier.tasks.config`).
"""

from glacier.tasks.config import register_resolvers

register_resolvers()
