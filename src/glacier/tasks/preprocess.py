"""What the Hydra entry scripts do, as plain functions (testable with the compose API)."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from glacier.data.preprocess import DatasetPreprocessor
from glacier.tasks import hydra_entry
from glacier.tasks.config import build
from glacier.utils.runtime import tune_malloc

log = logging.getLogger(__name__)


def run_preprocess(cfg: DictConfig) -> dict[str, Any] | None:
    """Instantiate the preprocessor from ``cfg`` and run it.

    Args:
        cfg: A composed ``preprocess`` config.

    Returns:
        The dataset description, or None when only a shard was processed.
    """
    tune_malloc()  # a strip's temporaries reuse the heap instead of faulting in fresh pages
    preprocessor: DatasetPreprocessor = build(cfg.preprocessor, _convert_="all")
    info = preprocessor.run()
    where = preprocessor.processed_dir.resolve()
    if info is None:
        chosen = cfg.scenes if cfg.scenes is not None else f"{cfg.shard} of {cfg.num_shards}"
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
