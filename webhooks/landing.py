"""The landing: append-only JSON lines, one per accepted delivery, fsynced before the vendor hears 2xx.

A folder of segments (`landing-000001.jsonl`, ...), written one at a time by one receiver (it holds
`receiver.lock`); when the one being written reaches `segment_bytes` it is fsynced and closed, and the next
one begins. The merge deletes the closed segments once their records are in the warehouse, so the landing
stays as small as the time between runs.

A record is one `write` of one line. A process killed mid-append leaves at most one torn line, at the end
of the newest segment (a prefix with no newline: a prefix of a JSON object never parses); readers skip it,
and the receiver cuts it off when it starts again, before appending anything. Each record carries its
delivery key (vendor, topic, event id): the receiver rebuilds the set of seen keys from the segments at
start, so a vendor's retry or replay of an event still landed is acknowledged and not stored again (one
whose segment was merged and deleted already is stored again, and the merge, keyed the same way, keeps one).

Appends from many request threads share fsyncs (group commit): each waits until the landing is synced past
its own record, and one fsync covers every record written before it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

DEFAULT_SEGMENT_BYTES = 64 << 20
SEGMENT = re.compile(r"^landing-(\d{6,})\.jsonl$")


class LandingCorrupt(RuntimeError):
    pass


class LandingBusy(RuntimeError):
    pass


def segment_name(number: int) -> str:
    return f"landing-{number:06d}.jsonl"


def segments(folder: Path) -> list[Path]:
    """The landing's segments, oldest first (the last is the one being written)."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), path) for path in folder.iterdir() if (m := SEGMENT.match(path.name))]
    return [path for _, path in sorted(found)]


def scan(path: Path) -> tuple[list[dict], int, int]:
    """Every whole record of a segment, the byte offset where they end, and its size (more if a torn line
    follows)."""
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


def read_records(folder: Path, among: list[Path] | None = None) -> Iterator[dict]:
    """The landed records, oldest first (of the segments `among`, by default all); a torn last record (or one
    being written right now) is skipped."""
    for path in segments(folder) if among is None else among:
        yield from scan(path)[0]


def delivery_key(record: dict) -> str:
    return f"{record['vendor']}:{record['topic']}:{record['event_id']}"


class Landing:
    """The receiver's handle on the landing folder: `append(record)` returns True when stored, False when a
    delivery with the same key was stored already; either way the record is on disk when it returns."""

    def __init__(self, folder: Path, torn_write_pause_s: float = 0.0, segment_bytes: int = DEFAULT_SEGMENT_BYTES):
        self.folder = folder
        self.torn_write_pause_s = torn_write_pause_s
        self.segment_bytes = segment_bytes
        folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(folder / "receiver.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise LandingBusy(f"another receiver is landing into {folder}; stop it first, or give this one "
                              f"another JOURNEY_WEBHOOK_LANDING") from None
        existing = segments(folder)
        self._seen: dict[str, int] = {}  # key -> end of its record, in bytes appended since start
        for path in existing[:-1]:
            self._seen.update((delivery_key(r), 0) for r in scan(path)[0])
        self.path = existing[-1] if existing else folder / segment_name(1)
        records, end, size = scan(self.path)
        self._seen.update((delivery_key(r), 0) for r in records)
        self.recovered_records = len(self._seen)
        self.torn_bytes = size - end
        self._fd = self._open(self.path)
        if self.torn_bytes:
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
        self._size = end  # of the segment being written
        self._written = self._synced = 0  # bytes appended (and fsynced) since start, over every segment
        self._write_lock = threading.Lock()
        self._sync_lock = threading.Lock()  # taken before _write_lock when both are needed

    def append(self, record: dict) -> bool:
        if self._size >= self.segment_bytes:
            self._next_segment()
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
            os.ftruncate(self._fd, self._size)  # no torn record left behind by a failed write (disk full)
            raise
        self._size += len(line)
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

    def _next_segment(self) -> None:
        """Close the full segment (every record in it synced) and begin the next."""
        with self._sync_lock, self._write_lock:
            if self._size < self.segment_bytes:
                return  # another thread began it
            os.fsync(self._fd)
            self._synced = self._written
            os.close(self._fd)
            number = int(SEGMENT.match(self.path.name).group(1)) + 1
            self.path = self.folder / segment_name(number)
            self._fd = self._open(self.path)
            self._size = 0

    def _open(self, path: Path) -> int:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fsync(fd)
        _fsync_dir(self.folder)  # the segment's own name must survive a crash too
        return fd

    def __len__(self) -> int:
        return len(self._seen)

    def close(self) -> None:
        os.close(self._fd)
        os.close(self._lock_fd)  # releases the flock


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
