"""The package layout: public faces, light imports, and docs/architecture.md matching the tree."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "glacier"
FACES = [
    "glacier.data.contract",
    "glacier.data.spec",
    "glacier.data.raster",
    "glacier.data.labels",
    "glacier.data.checks",
    "glacier.data.store",
    "glacier.data.preprocess",
    "glacier.data.hkh",
    "glacier.data.loading",
    "glacier.inference.engine",
    "glacier.inference.evaluation",
    "glacier.inference.products",
    "glacier.models",
]


def packages() -> list[str]:
    """Every package under src/glacier, as dotted names."""
    found = []
    for init in SRC.rglob("__init__.py"):
        parts = init.parent.relative_to(SRC.parent).parts
        found.append(".".join(parts))
    return sorted(found)


@pytest.mark.parametrize("name", FACES)
def test_every_face_name_resolves_and_none_shadows_a_module(name: str) -> None:
    package = importlib.import_module(name)
    modules = {info.name for info in pkgutil.iter_modules(package.__path__)}
    for export in package.__all__:
        value = getattr(package, export)
        assert not isinstance(value, type(sys)), f"{name}.{export} is a module"
    assert not modules & set(package.__all__), "a face name equal to a submodule gets shadowed"


def test_every_package_says_what_it_offers() -> None:
    for name in packages():
        module = importlib.import_module(name)
        assert module.__doc__ and len(module.__doc__) > 40, name
        if name != "glacier" and name != "glacier.configs":
            assert hasattr(module, "__all__"), name


def test_the_architecture_doc_names_every_package_and_module_it_lists() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for name in packages():
        if name in ("glacier", "glacier.configs"):
            continue
        short = name.removeprefix("glacier.")
        mentioned = re.search(rf"(glacier\.)?{re.escape(short)}\b", doc) or re.search(
            rf"^{re.escape(short.split('.')[-1])}\s", doc, re.M
        )
        assert mentioned, f"docs/architecture.md does not mention {name}"
    for dotted in ("data.factory", "inference.inputs", "data.preprocess.protocol"):
        assert (SRC / (dotted.replace(".", "/") + ".py")).is_file(), dotted


def imported_after(statement: str) -> set[str]:
    """Top-level module names in sys.modules after running ``statement`` in a fresh process."""
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(done.stdout.split())


def test_import_glacier_loads_no_layer() -> None:
    loaded = imported_after("import glacier")
    assert not {
        m for m in loaded if m.startswith(("glacier.data", "glacier.models", "glacier.tasks"))
    }
    assert "torch" not in loaded and "hydra" not in loaded


def test_preprocessing_imports_no_deep_learning_framework() -> None:
    loaded = imported_after("import glacier.data.factory, glacier.tasks.preprocess")
    assert not loaded & {"torch", "pytorch_lightning", "segmentation_models_pytorch"}


def test_preprocessing_starts_without_modules_it_does_not_use() -> None:
    # start-up is part of every `glacier preprocess` (SciPy alone cost it ~0.25 s; joblib,
    # needed only for n_jobs != 1, ~35 ms)
    loaded = imported_after("import glacier.tasks.preprocess")
    assert not loaded & {"scipy", "matplotlib", "torch", "wandb", "requests", "joblib"}


def test_a_loss_does_not_import_lightning() -> None:
    loaded = imported_after("from glacier.models import DiceLoss")
    assert "torch" in loaded and "pytorch_lightning" not in loaded
