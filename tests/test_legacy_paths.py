"""Module paths from before the renovation keep working (checkpoints, configs, users' code)."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import pytest
import torch
from hydra.utils import get_object

from glacier.legacy_paths import MOVED, RENAMED

FIXTURES = Path(__file__).parent / "fixtures"
CONFIGS = Path(__file__).resolve().parents[1] / "src" / "glacier" / "configs"
# `_target_`s that configs, checkpoints and the README named before the renovation
OLD_TARGETS = [
    "glacier.callbacks.PredictionPanels",
    "glacier.callbacks.WeightEMA",
    "glacier.data.augment.Augment",
    "glacier.data.datamodule.GlacierDataModule",
    "glacier.data.filtering.SliceFilter",
    "glacier.data.preprocessors.build_preprocessor",
    "glacier.data.release.HkhRelease",
    "glacier.data.release.release_tiles_spec",
    "glacier.data.sources.synthetic_data_spec",
    "glacier.data.spec.DataSpec",
    "glacier.data.splits.GeographicSplit",
    "glacier.data.splits.RandomSplit",
    "glacier.models.losses.DiceCELoss",
    "glacier.models.unet.DropoutUNet",
    "glacier.models.smp_model.SmpSegmentationModel",
]


@pytest.mark.parametrize("target", OLD_TARGETS)
def test_old_targets_resolve_to_the_moved_objects(target: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        obj = get_object(target)
    assert callable(obj)
    assert obj.__module__.startswith("glacier."), obj.__module__


@pytest.mark.parametrize("old", sorted(MOVED))
def test_every_old_module_imports_and_forwards_its_names(old: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(old)
    homes = [importlib.import_module(home) for home in MOVED[old]]
    public = [n for n in vars(homes[0]) if not n.startswith("_") and n != "annotations"]
    assert public, old
    for name in public:
        assert getattr(module, name) is getattr(homes[0], name)


def test_renamed_names_are_served_under_their_old_names() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for (old, name), new in RENAMED.items():
            module = importlib.import_module(old)
            home = next(
                importlib.import_module(h)
                for h in MOVED[old]
                if hasattr(importlib.import_module(h), new)
            )
            assert getattr(module, name) is getattr(home, new), (old, name)


def test_an_old_import_warns_with_the_new_home() -> None:
    import sys

    sys.modules.pop("glacier.data.schema", None)
    with pytest.warns(DeprecationWarning, match="glacier.data.contract.schema"):
        from glacier.data.schema import DatasetContract  # type: ignore[import-not-found]
    from glacier.data.contract import DatasetContract as Contract

    assert DatasetContract is Contract


def test_an_unknown_name_of_an_old_module_fails_as_usual() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module("glacier.data.storage")
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = module.no_such_name


def test_shipped_configs_name_current_paths_only() -> None:
    """The packaged configs use the new paths (the aliases are for what others wrote)."""
    targets = []
    for path in CONFIGS.rglob("*.yaml"):
        lines = path.read_text().splitlines()
        targets += [line.split("_target_:")[1].strip() for line in lines if "_target_:" in line]
    old = [t for t in targets if t.rsplit(".", 1)[0] in MOVED]
    assert not old, old
    for target in targets:
        if target.startswith("glacier."):
            assert callable(get_object(target)), target


def test_module_paths_named_by_an_old_checkpoint_still_resolve() -> None:
    hparams = torch.load(FIXTURES / "legacy_v1_synthetic.ckpt", weights_only=True)[
        "hyper_parameters"
    ]
    targets = [hparams[key]["_target_"] for key in ("model", "loss", "optimizer", "scheduler")]
    assert targets[0] == "glacier.models.unet.DropoutUNet"
    for target in targets:
        assert callable(get_object(target)), target
