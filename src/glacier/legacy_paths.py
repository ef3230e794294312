"""Module paths from before the renovation of 2026-12 (issue 20), kept importable.

Checkpoints, configs and users' code name classes by dotted path (``_target_:
glacier.data.filtering.SliceFilter``, ``from glacier.data.schema import DatasetContract``).
Each old module path below is served by a stand-in module that forwards attribute access to
where the names live now (and, for the few renamed names, to their new names), so such paths
keep working; importing one warns once with its new home (``DeprecationWarning``).
Two old modules became packages of the same name, ``glacier.data.spec`` and
``glacier.inference.products``: their main names (``DataSpec``, ``make_products``...) are on
the packages' faces.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

# old module -> the modules its names live in now (first = its main successor)
MOVED: dict[str, tuple[str, ...]] = {
    "glacier.config": ("glacier.tasks.config",),
    "glacier.callbacks": ("glacier.models.callbacks",),
    "glacier.utils.ddp": ("glacier.tasks.ddp",),
    "glacier.data.schema": ("glacier.data.contract.schema", "glacier.data.contract.dataset_file"),
    "glacier.data.channels": (
        "glacier.data.contract.channels",
        "glacier.data.raster.config_contract",
    ),
    "glacier.data.legacy": ("glacier.data.contract.legacy",),
    "glacier.data.sources": ("glacier.data.spec.sample",),
    "glacier.data.synthetic": ("glacier.data.spec.synthetic", "glacier.data.spec.synthetic_scene"),
    "glacier.data.headers": ("glacier.data.raster.headers", "glacier.data.raster.scene_header"),
    "glacier.data.footprints": ("glacier.data.raster.footprints",),
    "glacier.data.bands": ("glacier.data.raster.derived", "glacier.data.contract.channels"),
    "glacier.data.scene": ("glacier.data.raster.scene_reader", "glacier.data.raster.windows"),
    "glacier.data.dates": ("glacier.data.labels.dates",),
    "glacier.data.outlines": ("glacier.data.labels.outlines",),
    "glacier.data.masks": ("glacier.data.labels.masks",),
    "glacier.data.validate": ("glacier.data.checks.inputs",),
    "glacier.data.validate_vectors": ("glacier.data.checks.vectors",),
    "glacier.data.storage": ("glacier.data.store.scene_store", "glacier.data.contract.layout"),
    "glacier.data.pipeline": ("glacier.data.preprocess.preprocessor",),
    "glacier.data.scene_stage": ("glacier.data.preprocess.scene_stage",),
    "glacier.data.slicing": ("glacier.data.preprocess.slicing",),
    "glacier.data.postprocess": (
        "glacier.data.preprocess.postprocess",
        "glacier.data.preprocess.value_ranges",
        "glacier.data.store.training_pixels",
        "glacier.utils.progress",
    ),
    "glacier.data.filtering": ("glacier.data.preprocess.filtering",),
    "glacier.data.splits": ("glacier.data.preprocess.splits",),
    "glacier.data.shards": ("glacier.data.preprocess.shards",),
    "glacier.data.release": ("glacier.data.hkh.release", "glacier.data.hkh.release_facts"),
    "glacier.data.release_footprints": ("glacier.data.hkh.footprints",),
    "glacier.data.release_store": ("glacier.data.hkh.store", "glacier.data.hkh.preprocessor"),
    "glacier.data.preprocessors": ("glacier.data.factory",),
    "glacier.data.datamodule": (
        "glacier.data.loading.datamodule",
        "glacier.data.factory",
        "glacier.data.loading.split_datasets",
        "glacier.data.loading.window_loaders",
    ),
    "glacier.data.dataset": ("glacier.data.loading.windows", "glacier.data.store.protocol"),
    "glacier.data.sampling": ("glacier.data.loading.sampling",),
    "glacier.data.batch": ("glacier.data.loading.batch",),
    "glacier.data.augment": ("glacier.data.loading.augment",),
    "glacier.inference.tta": ("glacier.models.tta",),
    "glacier.inference.device": ("glacier.inference.engine.device",),
    "glacier.inference.tiling": ("glacier.inference.engine.tiling",),
    "glacier.inference.rows": ("glacier.inference.engine.readahead",),
    "glacier.inference.blending": ("glacier.inference.engine.blending",),
    "glacier.inference.encode": ("glacier.inference.engine.encode",),
    "glacier.inference.outputs": (
        "glacier.inference.engine.writer",
        "glacier.inference.engine.outputs",
    ),
    "glacier.inference.cog": ("glacier.inference.engine.cog",),
    "glacier.inference.predictor": ("glacier.inference.engine.tile_predictor",),
    "glacier.inference.pipeline": ("glacier.inference.engine.loop",),
    "glacier.inference.predict": ("glacier.inference.engine.mapper",),
    "glacier.inference.evaluate": ("glacier.inference.evaluation.scores", "glacier.models.metrics"),
    "glacier.inference.labels": ("glacier.inference.evaluation.reference",),
    "glacier.inference.stac": ("glacier.inference.products.stac",),
    "glacier.inference.vectorize": ("glacier.inference.products.vectorize",),
    "glacier.inference.preview": ("glacier.inference.products.preview",),
    "glacier.inference.records": ("glacier.inference.products.records",),
    "glacier.inference.scenes": ("glacier.inference.inputs",),
}
# (old module, old name) -> new name, for the names renamed so that each means one thing
RENAMED: dict[tuple[str, str], str] = {
    ("glacier.data.dataset", "WindowStore"): "PixelStore",
    ("glacier.data.sampling", "SceneArrays"): "WholeSceneStore",
    ("glacier.data.slicing", "SceneArrays"): "WritableSceneArrays",
    ("glacier.data.validate", "scene_fingerprint"): "scene_input_fingerprint",
    ("glacier.inference.records", "scene_fingerprint"): "prediction_fingerprint",
    ("glacier.inference.pipeline", "Pipeline"): "PredictionLoop",
    ("glacier.inference.tta", "transform"): "apply_view",
    ("glacier.inference.tta", "invert"): "undo_view",
}


class MovedModule(ModuleType):
    """Stands in for an old module path: attributes come from the modules that hold them now."""

    def __init__(self, name: str, homes: Sequence[str]) -> None:
        super().__init__(name, f"Moved to {homes[0]} (see glacier.legacy_paths).")
        self.__homes = tuple(homes)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        new_name = RENAMED.get((self.__name__, name), name)
        for home in self.__homes:
            module = importlib.import_module(home)
            if hasattr(module, new_name):
                return getattr(module, new_name)
        raise AttributeError(f"{self.__name__} (now {self.__homes[0]}) has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        names: set[str] = set()
        for home in self.__homes:
            names.update(dir(importlib.import_module(home)))
        return sorted(names)


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module paths of :data:`MOVED` and serves :class:`MovedModule` for them."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """A spec for an old module path; None for every other module."""
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        """The stand-in module."""
        warnings.warn(
            f"{spec.name} moved to {MOVED[spec.name][0]}; the old path still works",
            DeprecationWarning,
            stacklevel=2,
        )
        return MovedModule(spec.name, MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: attributes are looked up on use."""


def install() -> None:
    """Serve the old module paths (idempotent)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
