"""A worker of a shared Optuna study that does not train: ``train``'s real config and sweeper.

``python tests/optuna_stub_worker.py hparams_search=optuna [overrides]`` composes the packaged
``train`` config like ``glacier train`` and lets the Optuna sweeper run its trials against a
cheap objective of the same parameters. Each job writes ``job.json`` (the W&B group ``train``
would use, the parameters, the process) in its folder.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from glacier.tasks import CONFIG_PATH
from glacier.tasks.train import sweep_group


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float:
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    job = {
        "group": sweep_group(),
        "dropout": cfg.dropout,
        "lr": cfg.optimizer.lr,
        "pid": os.getpid(),
    }
    (out / "job.json").write_text(json.dumps(job))
    time.sleep(float(os.environ.get("STUB_SECONDS", "0.3")))  # a job that takes a while
    return -((cfg.dropout - 0.2) ** 2) - (math.log10(cfg.optimizer.lr) + 3) ** 2


if __name__ == "__main__":
    main()
