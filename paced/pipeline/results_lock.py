"""One workflow per results directory, whatever its working directory.

Snakemake locks its working directory; two clones (or two working directories) pointed at the same absolute
``results_dir`` would otherwise build the same world into it at once. :class:`ResultsLock` is a file inside the
results directory, created atomically (``O_EXCL``), holding the owner's host, pid and working directory. A lock
whose owner is gone (same host, dead pid) is taken over; any other held lock refuses, naming the owner and the
fix.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

log = logging.getLogger(__name__)


class ResultsLockedError(RuntimeError):
    """Another workflow holds the results directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ResultsLock:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.held = False

    def _owner(self) -> dict[str, object]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        """Take the lock, or raise :class:`ResultsLockedError` naming who holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid(), "cwd": os.getcwd()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                stale = owner.get("host") == me["host"] and not _alive(int(owner.get("pid", -1) or -1))
                if stale:
                    log.warning("removing a stale results lock %s (owner pid %s is gone)", self.path, owner.get("pid"))
                    self.path.unlink(missing_ok=True)
                    continue
                raise ResultsLockedError(
                    f"{self.path.parent} is in use by another workflow (host {owner.get('host')}, pid "
                    f"{owner.get('pid')}, working directory {owner.get('cwd')}); wait for it, or delete "
                    f"{self.path} if no workflow is running there") from None
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(me, f)
            self.held = True
            return
        raise ResultsLockedError(f"{self.path}: could not take the lock; delete it if no workflow is running")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
