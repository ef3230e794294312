"""Train a glacier segmentation model: ``python train.py [overrides]``."""

import hydra
from omegaconf import DictConfig

from glacier.training import run_train


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Fit, test and record metrics; returns the optimized metric for sweeps."""
    return run_train(cfg)


if __name__ == "__main__":
    main()
