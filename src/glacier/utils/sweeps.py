"""Shared Optuna studies: ready the storage before Hydra's Optuna sweeper opens it.

Several sweeper processes (terminals, cluster nodes) that name the same study and storage URL
share one study: each asks the storage for its next trial, so trial numbers never repeat. The
sweeper itself opens the storage with ``load_if_exists=True``; this callback makes the first
open safe: it creates the folder of a SQLite file and the storage's tables, retrying while
workers that start at the same moment race to create them.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

POSTGRES_HINT = "install a PostgreSQL driver with `pip install 'hkh-glacier-mapping[postgres]'`"


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other databases and in-memory SQLite).

    Args:
        url: An SQLAlchemy URL, e.g. ``sqlite:///logs/optuna/study.db``.

    Returns:
        The file path, relative to the working directory unless the URL has four slashes.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def printable(url: str) -> str:
    """The URL with its password masked, for logs and messages."""
    from sqlalchemy.engine import make_url

    masked: str = make_url(url).render_as_string(hide_password=True)
    return masked


def prepare_storage(url: str, attempts: int = 5) -> None:
    """Create an Optuna RDB storage's folder (SQLite) and tables, tolerating racing workers.

    Args:
        url: An SQLAlchemy URL (``sqlite:///…``, ``postgresql://user:pass@host/db``, …).
        attempts: How often to try before giving up.

    Raises:
        ImportError: If the database driver is not installed (with a hint).
        sqlalchemy.exc.SQLAlchemyError: If the storage still fails after ``attempts`` tries.
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    database = sqlite_file(url)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        try:
            storage = optuna.storages.RDBStorage(url)
        except ImportError as error:
            hint = POSTGRES_HINT if url.startswith("postgres") else "install its database driver"
            cause = error.__cause__ or error
            raise ImportError(f"Optuna storage {printable(url)}: {cause}; {hint}") from error
        except SQLAlchemyError as error:
            if attempt == attempts:
                raise
            delay = random.uniform(0.5, 1.5) * attempt
            log.info("Optuna storage busy (%s); retrying in %.1f s", type(error).__name__, delay)
            time.sleep(delay)
        else:
            storage.engine.dispose()
            return


class OptunaStorage(Callback):
    """Hydra callback: ready ``hydra.sweeper.storage`` when a multirun starts.

    Configured by ``hparams_search=optuna``; does nothing when the storage is null (in memory).
    """

    def __init__(self, attempts: int = 5) -> None:
        self.attempts = attempts

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Prepare the sweeper's storage before the sweeper opens it."""
        url = OmegaConf.select(config, "hydra.sweeper.storage", default=None)
        if not url:
            return
        prepare_storage(str(url), attempts=self.attempts)
        study = OmegaConf.select(config, "hydra.sweeper.study_name", default=None)
        log.info("Optuna study %s in %s", study, printable(str(url)))
