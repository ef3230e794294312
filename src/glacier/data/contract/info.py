"""``dataset.json``'s keys beside the contract: how the dataset is stored, counted, published.

:class:`DatasetInfo` is read by :func:`glacier.data.contract.load_contract` and written by the
preprocessors (``write_dataset``); only the publication check
(:func:`glacier.data.contract.check_published`) reads the raw file, before it is trusted. Keys a
dataset does not have (``root`` of stored scenes, ``folds`` without cross-validation) are left
out of the file, so it reads as it did before this type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STORAGE_SCENES = "scenes"
"""Scene arrays stored in the processed folder (:class:`glacier.data.store.SceneStore`)."""
STORAGE_RELEASE = "release"
"""The published HKH release read in place (:class:`glacier.data.hkh.ReleaseStore`)."""


@dataclass(frozen=True)
class DatasetInfo:
    """What ``dataset.json`` says of a processed dataset besides its contract.

    Attributes:
        counts: Slices per split.
        storage: Where the pixels are: :data:`STORAGE_SCENES` or :data:`STORAGE_RELEASE`.
        release_root: The release read in place (``root``; release storage only).
        overlap: Overlap of neighbouring slices in pixels (stored scenes only).
        folds: Cross-validation folds of the non-test slices (None: no folds).
        fold_counts: Slices per fold.
        generation: The published generation (None: a dataset from before generations).
        scene_generations: The generation each scene's arrays must carry (stored scenes).
    """

    counts: Mapping[str, int] = field(default_factory=dict)
    storage: str = STORAGE_SCENES
    release_root: Path | None = None
    overlap: int | None = None
    folds: int | None = None
    fold_counts: tuple[int, ...] = ()
    generation: int | None = None
    scene_generations: Mapping[str, int] | None = None

    @property
    def in_release(self) -> bool:
        """Whether the pixels are read from the HKH release in place."""
        return self.storage == STORAGE_RELEASE

    def to_dict(self) -> dict[str, Any]:
        """The ``dataset.json`` keys, in the file's order; absent ones left out."""
        data: dict[str, Any] = {"counts": dict(self.counts), "storage": self.storage}
        if self.release_root is not None:
            data["root"] = str(self.release_root)
        if self.overlap is not None:
            data["overlap"] = self.overlap
        if self.folds is not None:
            data |= {"folds": self.folds, "fold_counts": list(self.fold_counts)}
        if self.generation is not None:
            data["generation"] = self.generation
        if self.scene_generations is not None:
            data["scene_generations"] = dict(self.scene_generations)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetInfo:
        """Parse a ``dataset.json`` (its contract keys are ignored here)."""
        root, generations = data.get("root"), data.get("scene_generations")
        return cls(
            counts={str(k): int(v) for k, v in (data.get("counts") or {}).items()},
            storage=str(data.get("storage") or STORAGE_SCENES),
            release_root=None if root is None else Path(str(root)),
            overlap=None if data.get("overlap") is None else int(data["overlap"]),
            folds=None if data.get("folds") is None else int(data["folds"]),
            fold_counts=tuple(int(n) for n in data.get("fold_counts") or ()),
            generation=None if data.get("generation") is None else int(data["generation"]),
            scene_generations=None
            if generations is None
            else {str(k): int(v) for k, v in generations.items()},
        )
