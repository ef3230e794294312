"""Summarize a ``make demo`` run: where the maps are and what they scored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from glacier.errors import GlacierFileNotFoundError
from glacier.tasks import hydra_entry


def _load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def demo_summary(demo_dir: Path) -> str:
    """Text summary of a demo folder holding ``train/`` and ``predict/``.

    Args:
        demo_dir: The demo run folder.

    Returns:
        Test-split metrics, full-scene metrics and the paths of every map.
    """
    lines = [f"Demo run: {demo_dir.resolve()}"]
    train = _load(demo_dir / "train" / "metrics.json")
    if train:
        test = train.get("test", {})
        per_class = {k: v for k, v in sorted(test.items()) if k.startswith("test/iou_")}
        lines.append("Held-out test split, best checkpoint:")
        lines += [f"  {k:28s} {v:.3f}" for k, v in per_class.items()]
        lines.append(f"  checkpoint: {train.get('best_checkpoint')}")
        lines.append(f"  metrics:    {demo_dir / 'train' / 'metrics.json'}")
    for result in _load(demo_dir / "predict" / "predictions.json") or []:
        lines.append(f"Full-scene prediction of {result['scene']}:")
        metrics = (result.get("metrics") or {}).get("metrics", {})
        if "iou_mean" in metrics:
            lines.append(f"  mean IoU vs reference outlines: {metrics['iou_mean']:.3f}")
        for key in ("classes", "probs", "uncertainty", "polygons", "overlay", "metrics_json"):
            if result.get(key):
                lines.append(f"  {key:12s} {result[key]}")
    return "\n".join(lines)


def run_report(cfg: DictConfig) -> str:
    """Print (and return) the summary of ``cfg.run_dir``.

    Args:
        cfg: A composed ``report`` config.

    Returns:
        The summary text.

    Raises:
        GlacierFileNotFoundError: If the folder does not exist.
    """
    run_dir = Path(str(cfg.run_dir))
    if not run_dir.is_dir():
        raise GlacierFileNotFoundError(f"run_dir={run_dir}: no such folder")
    text = demo_summary(run_dir)
    print(text)
    return text


main = hydra_entry("report", run_report)

if __name__ == "__main__":
    main()
