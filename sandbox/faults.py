"""Fault injection: which vendor request fails, and how, reproducibly for a world's seed.

A SPEC is comma-separated `kind=value`, e.g. `429=0.05,5xx=3,timeout=1,timeout_s=0.5`:
- a value below 1 is the probability that a vendor request gets that fault;
- a whole number N >= 1 injects that fault on exactly N vendor requests, as early as possible but never
  on two vendor requests in a row (so a client that retries once always gets through): on requests
  1, 3, 5, ... until every count is used up, in a seeded-random order of kinds;
- `timeout_s` is how long a `timeout` fault stalls (default 5 seconds).
At most one fault per request; exact counts go first, then each probability is rolled (in the order
of FAULT_KINDS, the first hit wins). Only vendor API requests are faulted, never `/` or `/_sandbox/*`,
and only requests the vendor's rate limit admitted. The kinds:
- `429`: the vendor's own rate-limit response (its vendor module's `rate_limited`), with a short wait;
- `5xx`: 500, 502 and 503 in turn, with a JSON body;
- `timeout`: the answer is sent only after `timeout_s` (the client is expected to give up first);
- `reset`: the connection is aborted with a TCP RST instead of an answer;
- `truncate`: the answer promises its whole body in Content-Length, sends half of it and hangs up;
- `shift`: the listing is reordered between two page requests, as when a record already served is
  updated mid-pagination (see the vendor's `shiftable`); the request itself is answered normally. Only
  requests that can be shifted, follow-up pages of an offset-paged list, ever get it.
The same seed, spec and sequence of requests give the same faults on the same requests.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.http import Response

FAULT_KINDS = ("429", "5xx", "timeout", "reset", "truncate", "shift")
# Faults the HTTP handler acts out on the connection; the others are answers.
TRANSPORT_FAULTS = frozenset({"timeout", "reset", "truncate"})
DEFAULT_TIMEOUT_S = 5.0
# An injected 429 asks for a short wait, so clients under test recover quickly.
FAULT_RETRY_AFTER_S = 0.5
SERVER_ERRORS = ((500, "Internal Server Error"), (502, "Bad Gateway"), (503, "Service Unavailable"))


@dataclass(frozen=True)
class FaultSpec:
    probabilities: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def parse(cls, spec: str | None) -> FaultSpec:
        """The spec's faults; ValueError naming the item that is wrong."""
        probabilities: dict[str, float] = {}
        counts: dict[str, int] = {}
        timeout_s = DEFAULT_TIMEOUT_S
        for item in (spec or "").split(","):
            if not item.strip():
                continue
            kind, sep, raw = (part.strip() for part in item.partition("="))
            try:
                value = float(raw) if sep else None
            except ValueError:
                value = None
            if value is None or value < 0 or value != value:  # value != value: NaN
                raise ValueError(f"fault spec item {item.strip()!r}: expected kind=number with a number >= 0")
            if kind == "timeout_s":
                timeout_s = value
            elif kind not in FAULT_KINDS:
                raise ValueError(f"fault spec item {item.strip()!r}: unknown kind {kind!r}; "
                                 f"kinds are {', '.join(FAULT_KINDS)} and timeout_s")
            elif kind in probabilities or kind in counts:
                raise ValueError(f"fault spec names {kind!r} twice")
            elif value < 1:
                if value > 0:
                    probabilities[kind] = value
            elif value.is_integer():
                counts[kind] = int(value)
            else:
                raise ValueError(f"fault spec item {item.strip()!r}: use a probability below 1 or a whole count")
        # FAULT_KINDS order, whatever the spec's: the order probabilities are rolled in
        return cls({k: probabilities[k] for k in FAULT_KINDS if k in probabilities},
                   {k: counts[k] for k in FAULT_KINDS if k in counts}, timeout_s)


class FaultPlan:
    """Decides, request by request, which fault to inject; thread-safe."""

    def __init__(self, spec: FaultSpec, seed: int):
        self.spec = spec
        self._rng = random.Random(f"{seed}/faults")
        self._pending = [kind for kind, n in spec.counts.items() for _ in range(n)]
        self._rng.shuffle(self._pending)
        self._just_injected = False  # a counted fault hit the previous vendor request
        self._lock = threading.Lock()

    def draw(self, shiftable: Callable[[], bool]) -> str | None:
        """The fault for the next vendor request, or None. `shiftable()` says whether this request can
        be shifted; it is asked only when a shift is due."""
        with self._lock:
            # one roll per kind on every request, so the sequence of rolls does not depend on outcomes
            rolls = {kind: self._rng.random() for kind in self.spec.probabilities}
            counted = None if self._just_injected else self._next_counted(shiftable)
            self._just_injected = counted is not None
            if counted:
                return counted
            for kind, probability in self.spec.probabilities.items():
                if rolls[kind] < probability and (kind != "shift" or shiftable()):
                    return kind
            return None

    def _next_counted(self, shiftable: Callable[[], bool]) -> str | None:
        can_shift: bool | None = None
        for i, kind in enumerate(self._pending):
            if kind == "shift":
                can_shift = shiftable() if can_shift is None else can_shift
                if not can_shift:
                    continue
            return self._pending.pop(i)
        return None


def server_error(nth: int) -> Response:
    """The nth injected 5xx (counting from 1): 500, 502 and 503 in turn."""
    status, reason = SERVER_ERRORS[(nth - 1) % len(SERVER_ERRORS)]
    return Response.json(status, {"error": {"status": status, "message": f"{reason} (injected by the sandbox)"}})
