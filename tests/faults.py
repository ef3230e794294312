"""Run the ``glacier`` command with a fault injected where no small or read-only disk can be had.

``python tests/faults.py FAULT [ARG] -- TASK OVERRIDES...`` installs the fault, then runs
``glacier TASK OVERRIDES...`` exactly as the console script does. Faults:

- ``enospc-reserve``: the disk is full when a memory-mapped array's blocks are reserved
  (``os.posix_fallocate`` fails with ENOSPC, as it does on a full file system).
- ``enospc-write``: the disk fills while prediction writes its maps (the GeoTIFF writer's
  ``write_rows`` fails with ENOSPC, naming the file it writes).
- ``readonly DIR``: DIR is read-only: creating a folder or a file in it fails with EACCES.
- ``kill-mid-publish``: the process is killed (SIGKILL) after the first move of a committed
  publication, as a power cut would.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any


def enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def enospc_writer() -> None:
    from glacier.inference.engine import writer

    def write_rows(self: Any, rows: object) -> None:
        raise OSError(
            errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.partial[self.outputs.probs])
        )

    writer.OutputWriter.write_rows = write_rows  # type: ignore[method-assign]


def read_only(folder: str) -> None:
    root = Path(folder).resolve()
    mkdir, open_ = os.mkdir, os.open

    def inside(path: object) -> bool:
        resolved = Path(os.fsdecode(path)).resolve()  # type: ignore[arg-type]
        return resolved == root or root in resolved.parents

    def guarded_mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if inside(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))
        mkdir(path, *args, **kwargs)

    def guarded_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT and inside(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))
        return open_(path, flags, *args, **kwargs)

    os.mkdir = guarded_mkdir  # type: ignore[assignment]
    os.open = guarded_open  # type: ignore[assignment]


def kill_mid_publish() -> None:
    import signal

    from glacier.utils import publish

    apply = publish._apply

    def apply_then_die(root: Path, move: Any) -> None:
        apply(root, move)
        os.kill(os.getpid(), signal.SIGKILL)

    publish._apply = apply_then_die


def main() -> None:
    split = sys.argv.index("--")
    fault, args, command = sys.argv[1], sys.argv[2:split], sys.argv[split + 1 :]
    if fault == "enospc-reserve":
        os.posix_fallocate = enospc  # type: ignore[assignment]
    elif fault == "enospc-write":
        enospc_writer()
    elif fault == "readonly":
        read_only(args[0])
    elif fault == "kill-mid-publish":
        kill_mid_publish()
    else:
        raise SystemExit(f"unknown fault {fault!r}")
    from glacier.cli import main as glacier

    sys.argv = ["glacier", *command]
    glacier()


if __name__ == "__main__":
    main()
