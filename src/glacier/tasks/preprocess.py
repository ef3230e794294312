"""What the Hydra entry scripts do, as plain functions (testable with the compose API)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from glacier.data.preprocess import DatasetPreprocessor
from glacier.tasks import hydra_entry
from glacier.tasks.config import build
from glacier.utils.runtime import long_lived_objects_frozen, tune_malloc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreprocessOptions:
    """The settings of one ``glacier preprocess`` call the task reads itself.

    The ``preprocessor`` node (with ``data``, ``filter``, ``split``, and the shard keys by
    interpolation) is built by Hydra; its constructors check their own values.

    Attributes:
        preprocessor: The ``preprocessor`` config node.
        scenes: ``scenes=START-END`` (None: not given).
        shard: ``shard=`` (None: not given).
        num_shards: ``num_shards=``.
    """

    preprocessor: Any
    scenes: str | None
    shard: int | None
    num_shards: int

    @classmethod
    def from_config(cls, cfg: DictConfig) -> PreprocessOptions:
        """Type a composed ``preprocess`` config."""
        return cls(
            preprocessor=cfg.preprocessor,
            scenes=None if cfg.scenes is None else str(cfg.scenes),
            shard=None if cfg.shard is None else int(cfg.shard),
            num_shards=int(cfg.num_shards),
        )


def run_preprocess(cfg: DictConfig) -> dict[str, Any] | None:
    """Instantiate the preprocessor from ``cfg`` and run it.

    Args:
        cfg: A composed ``preprocess`` config (typed at once: :class:`PreprocessOptions`).

    Returns:
        The dataset description, or None when only a shard was processed.
    """
    return preprocess(PreprocessOptions.from_config(cfg))


def preprocess(options: PreprocessOptions) -> dict[str, Any] | None:
    """:func:`run_preprocess` with its settings typed.

    Returns:
        The dataset description, or None when only a shard was processed.
    """
    tune_malloc(one_heap=True)  # strips' temporaries reuse the heap, whichever thread reads
    preprocessor: DatasetPreprocessor = build(options.preprocessor, _convert_="all")
    with long_lived_objects_frozen():  # full GC passes skip the libraries' objects
        info = preprocessor.run()
    where = preprocessor.processed_dir.resolve()
    if info is None:
        chosen = (
            options.scenes
            if options.scenes is not None
            else (f"{options.shard} of {options.num_shards}")
        )
        log.info("Processed scenes %s into %s", chosen, where)
    else:
        log.info("Dataset %s ready in %s: %s slices", info["name"], where, info["counts"])
        if info.get("folds"):
            log.info(
                "%d cross-validation folds of the non-test slices (train on one with "
                "split.fold=i): %s slices each",
                info["folds"],
                info["fold_counts"],
            )
    return info


main = hydra_entry("preprocess", run_preprocess)

if __name__ == "__main__":
    main()
