"""Send conversions from the published marts to every configured destination, and record each one's state
in the ledger: decide (already final, no consent, too old by the destination's clock), record `pending`,
send in batches, record `sent` or `failed`.

A batch the platform refuses for its content is split in halves until the invalid events are isolated, so
one bad event does not hold back the rest; a batch that keeps failing to get an answer is retried with
backoff (pipelines.http) and then recorded failed while the others go on. A refused credential stops that
destination only. Named crash points (JOURNEY_ACTIVATION_CRASH_AT=before_send | after_send | mid_batch,
optionally `:<destination>`) kill the process there, as a crash would, to prove reruns are safe.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType

from activation import activecampaign, ga4, hubspot, meta
from activation.base import SEND_MARGIN, BatchRejected, Destination, NotConfigured
from activation.conversions import Conversion, read_conversions
from activation.ledger import FAILED, FINAL, NO_CONSENT, PENDING, SENT, TOO_OLD, Ledger, ledger_path
from pipelines.http import VendorError

# The one list of destinations; each module has the same shape (activation.base).
DESTINATIONS: dict[str, ModuleType] = {m.NAME: m for m in (ga4, meta, activecampaign, hubspot)}
CRASH_ENV = "JOURNEY_ACTIVATION_CRASH_AT"
CRASH_POINTS = ("before_send", "after_send", "mid_batch")
CRASH_EXIT_CODE = 70
CONFIGURATION_STATUSES = frozenset({401, 403, 404})  # every batch would fail the same way


def crash_from_env(point: str, destination: str) -> None:
    """Die at `point` if JOURNEY_ACTIVATION_CRASH_AT names it (and this destination, if it names one):
    `os._exit`, like a kill, so nothing is flushed or cleaned up."""
    wanted = os.environ.get(CRASH_ENV, "")
    if not wanted:
        return
    name, _, only = wanted.partition(":")
    if name == point and only in ("", destination):
        os._exit(CRASH_EXIT_CODE)


@dataclass
class DestinationReport:
    name: str
    clock: datetime | None = None
    decided: Counter = field(default_factory=Counter)  # status -> conversions decided this run
    already: int = 0  # conversions the ledger had final already
    batches: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)  # dry run: what the platform's validator said
    sample: dict | None = None  # dry run: the first request body
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return self.decided[SENT]

    @property
    def would_send(self) -> int:
        return self.decided[PENDING]


@dataclass
class ActivationReport:
    run_id: str
    dry_run: bool
    destinations: list[DestinationReport] = field(default_factory=list)
    not_configured: dict[str, list[str]] = field(default_factory=dict)
    conversions: int = 0
    ledger: dict[str, dict[str, int]] = field(default_factory=dict)  # destination -> status -> n, all runs
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return sum(d.sent for d in self.destinations)

    @property
    def failed(self) -> int:
        return sum(d.decided[FAILED] for d in self.destinations) + sum(bool(d.errors) and not d.decided[FAILED]
                                                                        for d in self.destinations)

    @property
    def events_per_second(self) -> float:
        seconds = sum(d.seconds for d in self.destinations)
        return self.sent / seconds if seconds else 0.0


def configured_destinations(names: list[str] | None = None) -> tuple[list[Destination], dict[str, list[str]]]:
    """The destinations whose settings are complete, and for the others what they lack."""
    ready, missing = [], {}
    for name in names or list(DESTINATIONS):
        try:
            ready.append(DESTINATIONS[name].from_settings())
        except NotConfigured as error:
            missing[name] = error.missing
    return ready, missing


def activate(published: Path, warehouse: Path, dry_run: bool = False, names: list[str] | None = None,
             run_id: str | None = None, hold_lock: bool = True, conversions: list[Conversion] | None = None,
             crash: Callable[[str, str], None] = crash_from_env) -> ActivationReport:
    """Send what the ledger has not finished to every configured destination. Conversions are read from the
    published marts on either warehouse; the ledger is `ledger_path(warehouse)`. The caller that already holds
    the warehouse lock (the ELT flow, after publishing) passes hold_lock=False."""
    from flows.lock import WarehouseLock

    started = time.monotonic()
    report = ActivationReport(run_id=run_id or uuid.uuid4().hex, dry_run=dry_run)
    destinations, report.not_configured = configured_destinations(names)
    if not destinations:
        return report
    if conversions is None:
        conversions = read_conversions(published)
    report.conversions = len(conversions)
    lock = WarehouseLock(warehouse, purpose="activate") if hold_lock else nullcontext()
    with lock:
        ledger = Ledger(ledger_path(warehouse), read_only=dry_run)
        try:
            for destination in destinations:
                report.destinations.append(deliver(destination, conversions, ledger, report.run_id, dry_run, crash))
            report.ledger = ledger.counts()
        finally:
            ledger.close()
    report.seconds = time.monotonic() - started
    return report


def _too_old(conversion: Conversion, destination: Destination, clock: datetime) -> bool:
    return clock - conversion.occurred_at > destination.max_age - SEND_MARGIN


def deliver(destination: Destination, conversions: list[Conversion], ledger: Ledger, run_id: str,
            dry_run: bool = False, crash: Callable[[str, str], None] = crash_from_env) -> DestinationReport:
    """One destination: decide every conversion it takes, then send the sendable ones batch by batch."""
    started = time.monotonic()
    report = DestinationReport(destination.name)
    name = destination.name
    try:
        report.clock = clock = destination.clock()
    except VendorError as error:
        report.errors.append(str(error))
        report.seconds = time.monotonic() - started
        return report
    done = {cid for cid, status in ledger.statuses(name).items() if status in FINAL}
    todo = [c for c in conversions if destination.takes(c)]
    report.already = sum(c.conversion_id in done for c in todo)
    todo = [c for c in todo if c.conversion_id not in done]
    no_consent = [c for c in todo if destination.needs_consent and not c.has_consent]
    too_old, sendable = [], []
    for c in todo:
        if not (destination.needs_consent and not c.has_consent):
            (too_old if _too_old(c, destination, clock) else sendable).append(c)
    report.decided.update({NO_CONSENT: len(no_consent), TOO_OLD: len(too_old)})
    batches = destination.batches(sendable)
    if dry_run:
        report.decided[PENDING] = len(sendable)
        report.batches = len(batches)
        report.sample = destination.body(batches[0]) if batches else None
        for batch in batches:
            report.validation += destination.validate(batch)
        report.requests = destination.requests
        report.seconds = time.monotonic() - started
        return report
    ledger.record(name, no_consent, NO_CONSENT, run_id, clock)
    ledger.record(name, too_old, TOO_OLD, run_id, clock)
    ledger.record(name, sendable, PENDING, run_id, clock)
    crash("before_send", name)
    stopped: str | None = None
    for number, batch in enumerate(batches, start=1):
        if stopped:
            ledger.record(name, batch, FAILED, run_id, clock, error=stopped)
            report.decided[FAILED] += len(batch)
            continue
        aged = [c for c in batch if _too_old(c, destination, clock)]  # the clock moved on while sending
        if aged:
            ledger.record(name, aged, TOO_OLD, run_id, clock)
            report.decided[TOO_OLD] += len(aged)
            batch = [c for c in batch if c not in aged]
        report.batches += 1
        for part, outcome in _send_splitting(destination, batch):
            if isinstance(outcome, str):
                ledger.record(name, part, FAILED, run_id, clock, error=outcome, attempted=True)
                report.decided[FAILED] += len(part)
                report.errors.append(outcome)
                if outcome.startswith("config:"):
                    stopped = outcome
                continue
            crash("after_send", name)
            clock = outcome.clock or clock
            ledger.record(name, part, SENT, run_id, clock, response=outcome.response, attempted=True)
            report.decided[SENT] += len(part)
        if number < len(batches):
            crash("mid_batch", name)
    report.clock = clock
    report.requests = destination.requests
    report.seconds = time.monotonic() - started
    return report


def _send_splitting(destination: Destination, batch: list[Conversion]):
    """Yield (conversions, Sent) or (conversions, error text): a batch refused for its content is split in
    halves until the invalid events stand alone; a configuration error (401/403/404) is prefixed `config:`."""
    if not batch:
        return
    try:
        yield batch, destination.send(batch)
        return
    except BatchRejected as error:
        problem = str(error)
    except VendorError as error:
        if error.status in CONFIGURATION_STATUSES:
            yield batch, f"config: {error}"
            return
        if error.status is None or error.status == 429 or error.status >= 500:
            yield batch, str(error)  # kept failing after retries with backoff
            return
        problem = str(error)
    if len(batch) == 1:
        yield batch, problem
        return
    half = len(batch) // 2
    yield from _send_splitting(destination, batch[:half])
    yield from _send_splitting(destination, batch[half:])


def format_report(report: ActivationReport) -> str:
    """The activation part of a run report, as a person reads it."""
    title = "Activation (dry run: nothing sent, nothing recorded)" if report.dry_run else "Activation"
    if not report.destinations:
        missing = "; ".join(f"{n}: {', '.join(m)}" for n, m in report.not_configured.items())
        return f"{title}: no destination is configured (set {missing})"
    lines = [f"{title}: {report.conversions:,} conversions in the published marts"]
    for d in report.destinations:
        clock = d.clock.isoformat(timespec="seconds") if d.clock else "unknown"
        counts = ", ".join(f"{status} {d.decided[status]:,}" for status in (PENDING, SENT, FAILED, TOO_OLD, NO_CONSENT)
                           if d.decided[status] and not (status == PENDING and not report.dry_run))
        verb = "would send" if report.dry_run else "this run"
        rate = f", {d.sent / d.seconds:,.1f} events/s" if d.sent and d.seconds else ""
        lines.append(f"  {d.name:<15} {verb}: {counts or 'nothing new'}; already done {d.already:,}; "
                     f"{d.batches} batch(es), {d.requests} request(s) in {d.seconds:.1f}s{rate} (clock {clock})")
        lines += [f"    error: {e[:300]}" for e in d.errors[:5]]
        lines += [f"    validation: {v}" for v in d.validation[:5]]
        if report.dry_run and d.sample:
            import json
            lines.append(f"    first request: {json.dumps(d.sample)[:400]}")
    for n, m in report.not_configured.items():
        lines.append(f"  {n:<15} not configured: set {', '.join(m)}")
    if report.ledger:
        lines.append("  ledger: " + "; ".join(f"{dest} " + ", ".join(f"{s} {n:,}" for s, n in statuses.items())
                                                for dest, statuses in report.ledger.items()))
    return "\n".join(lines)
