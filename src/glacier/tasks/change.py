"""What ``glacier change`` does: compare two prediction runs of the same places at two dates."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

from omegaconf import DictConfig

from glacier.data.labels import load_inventory
from glacier.errors import GlacierConfigError
from glacier.inference.change import (
    ChangeResult,
    ChangeSettings,
    compare_runs,
    format_change,
    load_run,
)
from glacier.tasks import hydra_entry
from glacier.tasks.predict_options import InventoryOptions

log = logging.getLogger(__name__)


def _date(cfg: DictConfig, key: str) -> date | None:
    """A ``YYYY-MM-DD`` setting as a date (None when unset).

    Raises:
        GlacierConfigError: Naming the key when the value is no date.
    """
    value = cfg.get(key)
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise GlacierConfigError(f"{key}={value}: not a date (YYYY-MM-DD)") from error


def change_settings(cfg: DictConfig) -> ChangeSettings:
    """The comparison settings of a composed ``change`` config."""
    return ChangeSettings(
        allow_different_checkpoints=bool(cfg.allow_different_checkpoints),
        before_date=_date(cfg, "before_date"),
        after_date=_date(cfg, "after_date"),
        cog=bool(cfg.cog),
    )


def run_change(cfg: DictConfig) -> ChangeResult:
    """Compare ``cfg.before`` and ``cfg.after``; write change maps, tables, STAC items.

    Args:
        cfg: A composed ``change`` config.

    Returns:
        What was written.
    """
    settings = change_settings(cfg)
    before = load_run(Path(str(cfg.before)), "before")
    after = load_run(Path(str(cfg.after)), "after")
    if cfg.get("inventory") == "data":
        raise GlacierConfigError("inventory=data has no data config here: give the outline file")
    found = InventoryOptions.from_config(cfg).settings(None)
    inventory = None if found is None else load_inventory(found)
    out_dir = Path(str(cfg.out_dir))
    result = compare_runs(before, after, out_dir, inventory, settings)
    pixels = result.summary["pixels"]
    print(
        f"Change maps of {len(result.maps)} scene(s) in {out_dir}: stable glacier "
        f"{pixels.get('stable_glacier_km2', 0):.2f} km², loss {pixels.get('loss_km2', 0):.2f} "
        f"km², gain {pixels.get('gain_km2', 0):.2f} km² (pixels observed at both dates)"
    )
    if result.table is not None:
        print(format_change(result.summary["glaciers"], result.table))
    return result


main = hydra_entry("change", run_change)

if __name__ == "__main__":
    main()
