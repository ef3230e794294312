"""The publish rule: a run's new files appear together or not at all; dead runs' leftovers go.

A run writes everything new into private staging folders, ``<root>/.staging/<name>/`` (each
with an ``owner.json``: host and process), never under a final name. To publish, it *commits*:
it writes a publication record ``<root>/.staging/<token>.publish.json`` listing every move
(a staged file or folder → its final path, or a final path to remove), by one atomic rename.
That rename is the moment the new state exists. The moves are then applied in order (with
SIGINT/SIGTERM held) and the record removed. A run killed after the commit leaves the record:
the next run finishes it (:func:`finish_publications`; every move can be applied twice), and
readers refuse the folder by name while it is pending (:func:`pending_publications`). So a
reader sees the old state, the new one, or a refusal that says what to re-run; never a mix.

Used by preprocessing (scenes and the index of a dataset, sharded gathers, the HKH release's
index) and prediction (a scene's maps, polygons, overlay, STAC item and record).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from glacier.errors import GlacierEnvironmentError
from glacier.utils.io import replace_directory, write_json_atomic
from glacier.utils.signals import signals_deferred

log = logging.getLogger(__name__)
STAGING = ".staging"
PUBLICATION_SUFFIX = ".publish.json"
OWNER_FILE = "owner.json"
TOKEN_LENGTH = 8


@dataclass(frozen=True)
class Move:
    """One step of a publication, paths relative to the published folder.

    Attributes:
        target: The final path.
        source: The staged file or folder that replaces it; None removes ``target`` (never
            the target of a later move of the same publication: moves are applied again
            when a killed publication is finished).
    """

    target: str
    source: str | None = None


def staging_root(root: Path) -> Path:
    """The folder holding a published folder's staging folders and publication records."""
    return Path(root) / STAGING


def new_token() -> str:
    """A short random token naming one run's staging folders."""
    return uuid.uuid4().hex[:TOKEN_LENGTH]


def this_owner() -> dict[str, Any]:
    """This process: host, process id and command (recorded in staging folders and records)."""
    task = os.environ.get("GLACIER_TASK")
    command = " ".join(["glacier", task, *sys.argv[1:]] if task else sys.argv)
    return {"host": socket.gethostname(), "pid": os.getpid(), "command": command}


def create_staging(root: Path, name: str) -> Path:
    """Create this run's staging folder ``<root>/.staging/<name>/`` with its ``owner.json``.

    Raises:
        OSError: If the folder cannot be created (a read-only or full disk).
    """
    folder = staging_root(root) / name
    folder.mkdir(parents=True)
    write_json_atomic(folder / OWNER_FILE, this_owner())
    return folder


def read_owner(folder: Path) -> dict[str, Any] | None:
    """The ``owner.json`` of a staging folder, or None when it has none or it is unreadable."""
    try:
        owner: dict[str, Any] = json.loads((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return owner


def owner_alive(owner: dict[str, Any] | None) -> bool | None:
    """Whether the run that owns a folder or record still runs: None when unknown (another host).

    A folder without owner (from before this rule) counts as dead.
    """
    if owner is None:
        return False
    if owner.get("host") != socket.gethostname():
        return None
    pid = int(owner.get("pid") or 0)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_folder(folder: Path) -> None:
    """Remove a staging folder, unless a committed publication still moves files out of it.

    A publication whose moves failed midway (or whose run was killed) must be finishable by
    the next run, so the folders its record names stay until it is finished.
    """
    folder = Path(folder)
    root = folder.parent.parent
    if folder.parent.name == STAGING and folder.name in committed_folders(root):
        return
    shutil.rmtree(folder, ignore_errors=True)


def committed_folders(root: Path) -> set[str]:
    """Staging folders (names) that pending publication records in ``root`` still need."""
    return {name for record in pending_publications(root) for name in record.get("cleanup", [])}


def _apply(root: Path, move: Move) -> None:
    """Apply one move; a move already applied (its source gone, its target there) is skipped."""
    target = root / move.target
    if move.source is None:
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        return
    source = root / move.source
    old = target.with_name(f".{target.name}.old")  # replace_directory's set-aside copy
    if source.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_directory(source, target)
    elif source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    elif not target.exists():
        raise GlacierEnvironmentError(
            2,
            f"publication in {root}: neither {source} nor {target} exists (files were removed "
            "while a run published them); re-run the command that wrote this folder",
        )
    if old.is_dir():
        shutil.rmtree(old)


def _record_moves(record: dict[str, Any]) -> list[Move]:
    return [Move(**move) for move in record["moves"]]


def _finish(root: Path, path: Path, record: dict[str, Any]) -> None:
    """Apply a committed record's moves, remove the record, then its staging folders."""
    with signals_deferred():
        for move in _record_moves(record):
            _apply(root, move)
        path.unlink(missing_ok=True)
    for name in record.get("cleanup", []):
        shutil.rmtree(staging_root(root) / name, ignore_errors=True)


def commit(
    root: Path, moves: Sequence[Move], cleanup: Sequence[Path] = (), token: str | None = None
) -> None:
    """Publish staged files together: write the record (the commit), apply it, remove it.

    Args:
        root: The published folder (a processed dataset, an output folder).
        moves: What to move into place, in order (the file readers trust last, last).
        cleanup: Staging folders to remove once every move is done.
        token: Names the record (default: a new token).

    Raises:
        OSError: If the record cannot be written (nothing is published then).
    """
    root = Path(root)
    record = {
        "owner": this_owner(),
        "moves": [asdict(move) for move in moves],
        "cleanup": [str(Path(folder).relative_to(staging_root(root))) for folder in cleanup],
    }
    path = staging_root(root) / f"{token or new_token()}{PUBLICATION_SUFFIX}"
    write_json_atomic(path, record)
    _finish(root, path, record)


def pending_publications(root: Path) -> list[dict[str, Any]]:
    """Publication records committed in ``root`` but not finished (their run was killed).

    Returns:
        The records (``owner`` holds the ``command`` that committed each), oldest first.
    """
    folder = staging_root(root)
    if not folder.is_dir():
        return []
    records = []
    paths = sorted(folder.glob(f"*{PUBLICATION_SUFFIX}"), key=lambda p: p.stat().st_mtime_ns)
    for path in paths:
        try:
            records.append({**json.loads(path.read_text()), "path": str(path)})
        except (OSError, ValueError):
            continue
    return records


def finish_publications(root: Path) -> list[str]:
    """Finish every publication a killed run committed in ``root`` (not those still running).

    Returns:
        The commands whose publications were finished.
    """
    finished = []
    for record in pending_publications(root):
        if owner_alive(record.get("owner")) and record["owner"].get("pid") != os.getpid():
            log.warning("%s: a publication by a running process is pending", record["path"])
            continue
        _finish(Path(root), Path(record["path"]), record)
        command = str((record.get("owner") or {}).get("command", "an earlier run"))
        log.warning("finished the publication `%s` began in %s", command, root)
        finished.append(command)
    return finished


def staging_folders(root: Path) -> list[Path]:
    """Every staging folder in ``root`` (not the publication records), sorted."""
    folder = staging_root(root)
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def remove_empty_staging_root(root: Path) -> None:
    """Remove ``<root>/.staging`` when nothing is left in it."""
    folder = staging_root(root)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
