"""Typed boundaries: a config node must build the class its caller needs, checked at the door."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from glacier.data.contract import DatasetInfo
from glacier.errors import GlacierInputError
from glacier.tasks.config import build_as


def test_a_class_target_of_another_kind_is_refused_before_it_is_built() -> None:
    node = OmegaConf.create({"_target_": "glacier.data.hkh.HkhRelease", "name": "x", "root": "???"})
    with pytest.raises(
        GlacierInputError, match=r"^data \(_target_ glacier\.data\.hkh\.HkhRelease\) "
    ):
        build_as(node, Path, "data", "give a path")


def test_what_a_factory_returns_is_checked_after_it_is_built() -> None:
    node = OmegaConf.create({"_target_": "builtins.dict", "counts": {"train": 1}})
    with pytest.raises(GlacierInputError, match=r"makes a dict, not a DatasetInfo; try again$"):
        build_as(node, DatasetInfo, "info", "try again")
    made = build_as(OmegaConf.create({"_target_": "pathlib.Path", "_args_": ["a"]}), Path, "p")
    assert made == Path("a")
