"""Preprocess scenes and outlines into a training dataset: ``python preprocess.py [overrides]``."""

import hydra
from omegaconf import DictConfig

from glacier.entry import run_preprocess


@hydra.main(version_base="1.3", config_path="configs", config_name="preprocess")
def main(cfg: DictConfig) -> None:
    """Run the preprocessing pipeline described by ``cfg``."""
    run_preprocess(cfg)


if __name__ == "__main__":
    main()
