"""One writer at a time: an OS file lock beside the warehouse, held by every command that writes it.

Prefect's concurrency limits do not bind separate processes; `flock` does, whichever process, server or
worker started the run. A second writer waits a bounded time, then gives up naming the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_WAIT_SECONDS = float(os.environ.get("JOURNEY_LOCK_WAIT_SECONDS", "600"))


class WarehouseBusy(RuntimeError):
    pass


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


class WarehouseLock:
    """`with WarehouseLock(warehouse, purpose="run"):` holds the warehouse for writing."""

    def __init__(self, warehouse: Path, purpose: str, wait_seconds: float | None = None):
        self.path = lock_path(warehouse)
        self.purpose = purpose
        self.wait_seconds = DEFAULT_WAIT_SECONDS if wait_seconds is None else wait_seconds
        self._handle = None

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return "an unknown process"
        return (f"'{info.get('purpose')}' (pid {info.get('pid')} on {info.get('host')}, since {info.get('since')}: "
                f"{info.get('command')})") if info else "an unknown process"

    def __enter__(self) -> WarehouseLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> WarehouseLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self.holder()
                    handle.close()
                    raise WarehouseBusy(
                        f"the warehouse {self.path.with_suffix('')} is being written by {holder}; waited "
                        f"{self.wait_seconds:.0f}s. Run again when it finishes (JOURNEY_LOCK_WAIT_SECONDS sets the "
                        f"wait).") from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"purpose": self.purpose, "pid": os.getpid(), "host": socket.gethostname(),
                                 "since": datetime.now(UTC).isoformat(timespec="seconds"),
                                 "command": " ".join(sys.argv[:4])}))
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
