"""Typed boundaries: config nodes build the classes callers need; settings typed at the door."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import compose_config
from omegaconf import OmegaConf

from glacier.data.contract import DatasetInfo
from glacier.errors import GlacierConfigError, GlacierInputError
from glacier.tasks.config import build_as
from glacier.tasks.predict_options import PredictOptions


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


def test_predict_settings_are_typed_once_at_the_door(tmp_path: Path) -> None:
    overrides = ["ckpt_path=[a.ckpt,b.ckpt]", "input=[x.tif,'y*.tif']", "temperature=1.5"]
    cfg = compose_config(
        "predict", [*overrides, "uncertainty=[entropy]", "inventory=rgi.shp"], tmp_path
    )
    options = PredictOptions.from_config(cfg)
    assert options.ckpt_path == ["a.ckpt", "b.ckpt"] and type(options.ckpt_path) is list
    assert options.inputs == ["x.tif", "y*.tif"] and type(options.inputs) is list
    assert options.temperature == 1.5 and options.uncertainty == ("entropy",)
    assert options.inventory.source == "rgi.shp" and options.inventory.id_column == "RGIId"
    assert not options.uses_data and options.out_dir == Path(str(cfg.out_dir))
    for value in vars(options).values():
        assert not OmegaConf.is_config(value) or value is options.data_config
    default = PredictOptions.from_config(compose_config("predict", ["ckpt_path=a.ckpt"], tmp_path))
    assert default.temperature is None and default.uncertainty is None and default.uses_data


def test_a_bad_predict_setting_is_refused_with_its_old_message(tmp_path: Path) -> None:
    cfg = compose_config("predict", ["ckpt_path=a.ckpt", "overlap=600"], tmp_path)
    with pytest.raises(GlacierConfigError, match=r"^overlap=600"):
        PredictOptions.from_config(cfg)
