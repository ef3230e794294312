"""Map glaciers in full scenes with a trained checkpoint: ``python predict.py ckpt_path=...``."""

import hydra
from omegaconf import DictConfig

from glacier.inference.runner import run_predict


@hydra.main(version_base="1.3", config_path="configs", config_name="predict")
def main(cfg: DictConfig) -> None:
    """Write class maps, probabilities, uncertainty, polygons, overlays and metrics."""
    run_predict(cfg)


if __name__ == "__main__":
    main()
