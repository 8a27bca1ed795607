"""The deployments and their schedules, in one place. `journey serve` serves them.

Each schedule can be overridden by an environment variable `JOURNEY_SCHEDULE__<NAME>` (name upper-cased,
dashes as underscores) holding a cron expression or `every:<seconds>`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from flows.docs import docs_flow
from flows.elt import elt_flow
from flows.watch import watch_flow


@dataclass(frozen=True)
class Schedule:
    name: str
    flow: object
    default: str  # cron, or every:<seconds>
    parameters: dict = field(default_factory=dict)
    description: str = ""

    @property
    def schedule(self) -> str:
        return os.environ.get(f"JOURNEY_SCHEDULE__{self.name.upper().replace('-', '_')}") or self.default


SCHEDULES = (
    Schedule("elt-hourly", elt_flow, "0 * * * *", {}, "incremental ELT: extract, load, build, gate, publish"),
    Schedule("elt-full-refresh-nightly", elt_flow, "30 2 * * *", {"full_refresh": True},
             "full refresh: every source re-read from scratch"),
    Schedule("docs-nightly", docs_flow, "0 4 * * *", {}, "dbt docs site rebuilt"),
    Schedule("watch", watch_flow, "every:600", {}, "alerts on stale data and late runs"),
)


def deployments(only: list[str] | None = None) -> list:
    chosen = [s for s in SCHEDULES if not only or s.name in only]
    unknown = set(only or []) - {s.name for s in SCHEDULES}
    if unknown:
        raise ValueError(f"unknown deployment(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(s.name for s in SCHEDULES)}")
    out = []
    for s in chosen:
        timing = ({"interval": timedelta(seconds=float(s.schedule.split(":", 1)[1]))}
                  if s.schedule.startswith("every:") else {"cron": s.schedule})
        # a run still going when the next is due: the new one is cancelled rather than queued behind the
        # warehouse lock, so a slow run never snowballs into a backlog
        limit = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)
        out.append(s.flow.to_deployment(name=s.name, parameters=s.parameters, description=s.description,
                                        tags=["journey"], concurrency_limit=limit, **timing))
    return out
