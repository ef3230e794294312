"""Hydra configs shipped with glacier (``pkg://glacier.configs``)."""
