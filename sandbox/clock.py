"""A sandbox's own clock: the `Date` its APIs answer with and the "now" of its world."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta


class Clock:
    """Starts at the world's start time and moves only forward, when advanced; thread-safe."""

    def __init__(self, start: datetime):
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError(f"the sandbox clock only moves forward, not by {delta}")
        with self._lock:
            self._now += delta
            return self._now
