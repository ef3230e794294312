"""What ``glacier change`` does: compare two prediction runs of the same places at two dates."""

from __future__ import annotations

import logging
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ChangeOptions:
    """Every setting of one ``glacier change`` call (the keys of ``configs/change.yaml``).

    Attributes:
        before: The earlier prediction folder.
        after: The later prediction folder.
        out_dir: Where the change maps and tables go.
        inventory: Outlines for per-glacier change (``inventory=`` and ``per_glacier/``).
        settings: How the runs are compared (dates, checkpoints, COGs).
    """

    before: Path
    after: Path
    out_dir: Path
    inventory: InventoryOptions
    settings: ChangeSettings

    @classmethod
    def from_config(cls, cfg: DictConfig) -> ChangeOptions:
        """Check a composed ``change`` config and type it.

        Raises:
            GlacierConfigError: For a date that is none, or ``inventory=data``.
        """
        settings = change_settings(cfg)
        if cfg.get("inventory") == "data":
            raise GlacierConfigError(
                "inventory=data has no data config here: give the outline file"
            )
        return cls(
            before=Path(str(cfg.before)),
            after=Path(str(cfg.after)),
            out_dir=Path(str(cfg.out_dir)),
            inventory=InventoryOptions.from_config(cfg),
            settings=settings,
        )


def run_change(cfg: DictConfig) -> ChangeResult:
    """Compare ``cfg.before`` and ``cfg.after``; write change maps, tables, STAC items.

    Args:
        cfg: A composed ``change`` config (checked and typed at once: :class:`ChangeOptions`).

    Returns:
        What was written.
    """
    return change(ChangeOptions.from_config(cfg))


def change(options: ChangeOptions) -> ChangeResult:
    """:func:`run_change` with its settings checked and typed.

    Returns:
        What was written.
    """
    before = load_run(options.before, "before")
    after = load_run(options.after, "after")
    found = options.inventory.settings(None)
    inventory = None if found is None else load_inventory(found)
    out_dir = options.out_dir
    result = compare_runs(before, after, out_dir, inventory, options.settings)
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
