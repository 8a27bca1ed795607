"""The landing file: append-only JSON lines, one per accepted delivery, fsynced before the vendor hears 2xx.

A record is one `write` of one line. A process killed mid-append leaves at most one torn line at the end
(a prefix with no newline: a prefix of a JSON object never parses); readers skip it, and the receiver cuts
it off when it starts again, before appending anything. Each record carries its delivery key (vendor,
topic, event id): the receiver rebuilds the set of seen keys from the file at start, so a vendor's retry or
replay of an event already landed is acknowledged and not stored again.

Appends from many request threads share fsyncs (group commit): each waits until the file is synced past
its own record, and one fsync covers every record written before it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path


class LandingCorrupt(RuntimeError):
    pass


def scan(path: Path) -> tuple[list[dict], int, int]:
    """Every whole record, the byte offset where they end, and the file's size (more if a torn line follows)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0, 0
    records, offset = [], 0
    while offset < len(data):
        newline = data.find(b"\n", offset)
        if newline < 0:
            break  # torn last record: written in part when the writer died
        try:
            records.append(json.loads(data[offset:newline]))
        except ValueError:
            raise LandingCorrupt(f"{path}: record at byte {offset} is not valid JSON and is not the last one; "
                                 f"the file was changed by something other than the receiver. Move it aside "
                                 f"and keep a copy: its other records are intact, one JSON object per line.") from None
        offset = newline + 1
    return records, offset, len(data)


def read_records(path: Path) -> Iterator[dict]:
    """The landed records, oldest first; a torn last record (or one being written right now) is skipped."""
    yield from scan(path)[0]


def delivery_key(record: dict) -> str:
    return f"{record['vendor']}:{record['topic']}:{record['event_id']}"


class Landing:
    """The receiver's handle on the landing file: `append(record)` returns True when stored, False when a
    delivery with the same key was stored already; either way the record is on disk when it returns."""

    def __init__(self, path: Path, torn_write_pause_s: float = 0.0):
        self.path = path
        self.torn_write_pause_s = torn_write_pause_s
        path.parent.mkdir(parents=True, exist_ok=True)
        records, end, size = scan(path)
        self.recovered_records = len(records)
        self.torn_bytes = size - end
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if self.torn_bytes:
            os.ftruncate(self._fd, end)
        os.fsync(self._fd)
        _fsync_dir(path.parent)  # the file's own name must survive a crash too
        self._seen = {delivery_key(r): end for r in records}  # key -> end offset of the record
        self._written = self._synced = end
        self._write_lock = threading.Lock()
        self._sync_lock = threading.Lock()

    def append(self, record: dict) -> bool:
        key = delivery_key(record)
        with self._write_lock:
            end = self._seen.get(key)
            stored = end is None
            if stored:
                end = self._write((json.dumps(record, separators=(",", ":")) + "\n").encode())
                self._seen[key] = end
        self._sync_to(end)  # a duplicate is acknowledged only once its first copy is on disk
        return stored

    def _write(self, line: bytes) -> int:
        try:
            if self.torn_write_pause_s:  # test hook: leave a window in which a kill tears the record
                half = len(line) // 2
                _write_all(self._fd, line[:half])
                time.sleep(self.torn_write_pause_s)
                _write_all(self._fd, line[half:])
            else:
                _write_all(self._fd, line)
        except OSError:
            os.ftruncate(self._fd, self._written)  # no torn record left behind by a failed write (disk full)
            raise
        self._written += len(line)
        return self._written

    def _sync_to(self, end: int) -> None:
        with self._sync_lock:
            if self._synced >= end:
                return
            with self._write_lock:
                target = self._written
            os.fsync(self._fd)
            self._synced = target

    def __len__(self) -> int:
        return len(self._seen)

    def close(self) -> None:
        os.close(self._fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
