"""Vendors' rate limits as leaky buckets.

Every budget is a bucket of `size` requests that drains `leak_per_second`: Shopify's is literally one
(40, leaking 2/s); "5 requests per second" is a bucket of 5 draining 5/s, and HubSpot's "100 per 10
seconds" a bucket of 100 draining 10/s. Buckets run on monotonic wall time, never on the sandbox's
world clock: advancing the world by a day must not refill (or drain) anyone's budget.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """A vendor account's request budget."""

    size: int
    leak_per_second: float


class LeakyBucket:
    """One account's bucket; thread-safe, since the server answers each request on its own thread."""

    def __init__(self, budget: Budget, now: Callable[[], float] = time.monotonic):
        self.budget = budget
        self._now = now
        self._level = 0.0
        self._at = now()
        self._lock = threading.Lock()

    def take(self) -> tuple[float, int]:
        """Pour one request in. Returns `(wait, used)`: `wait` is 0 if the request is admitted, otherwise
        the seconds until one would fit (a refused request is not poured in); `used` is the bucket's
        level in whole requests, partly drained ones rounded up, as Shopify's `n/40` header shows it."""
        with self._lock:
            now = self._now()
            self._level = max(0.0, self._level - (now - self._at) * self.budget.leak_per_second)
            self._at = now
            overflow = self._level + 1 - self.budget.size
            if overflow > 0:
                return overflow / self.budget.leak_per_second, self.budget.size
            self._level += 1
            return 0.0, math.ceil(self._level - 1e-9)
