"""The watcher: alerts when the published data is stale or a scheduled run is late. Runs on its own
schedule, so it speaks up precisely when the ELT itself is not running."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prefect import flow, get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

from flows.alerts import send_alert
from flows.publish import last_published, published_path

STALE_AFTER = timedelta(hours=float(os.environ.get("JOURNEY_STALE_AFTER_HOURS", "3")))
LATE_AFTER = timedelta(minutes=float(os.environ.get("JOURNEY_LATE_AFTER_MINUTES", "10")))
WATCHED_FLOWS = ("journey-elt",)


def stale_problem(published: Path, max_age: timedelta, now: datetime) -> str | None:
    last = last_published(published)
    if last is None:
        return f"nothing has ever been published to {published}"
    published_at = last["published_at"].replace(tzinfo=UTC)
    if now - published_at > max_age:
        hours = (now - published_at).total_seconds() / 3600
        return (f"the last successful publish (run {last['run_id']}) was {hours:.1f} hours ago at "
                f"{published_at:%Y-%m-%d %H:%M} UTC, over the {max_age.total_seconds() / 3600:g}h limit")
    return None


def late_runs(late_after: timedelta, now: datetime) -> list[str]:
    """Scheduled runs of the watched flows that should have started `late_after` ago and have not."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(WATCHED_FLOWS))),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                expected_start_time=FlowRunFilterExpectedStartTime(before_=now - late_after)),
            limit=50)
    return [f"flow run '{r.name}' ({r.id}) was due at {r.expected_start_time:%Y-%m-%d %H:%M:%S} UTC and has not "
            f"started: is `journey serve` (or a worker) running?" for r in runs]


@flow(name="journey-watch")
def watch_flow(stale_after_hours: float | None = None, late_after_minutes: float | None = None,
               published: str | None = None) -> list[str]:
    """Check freshness of the published data and lateness of scheduled runs; alert on each problem."""
    now = datetime.now(UTC)
    max_age = timedelta(hours=stale_after_hours) if stale_after_hours is not None else STALE_AFTER
    grace = timedelta(minutes=late_after_minutes) if late_after_minutes is not None else LATE_AFTER
    target = Path(published) if published else published_path()
    problems = []
    stale = stale_problem(target, max_age, now)
    if stale:
        problems.append(stale)
        send_alert("stale data", "the published marts are older than allowed",
                   [stale, "look at the latest journey-elt runs in Prefect"])
    late = late_runs(grace, now)
    if late:
        problems += late
        send_alert("late run", f"{len(late)} scheduled run(s) have not started", late)
    return problems
