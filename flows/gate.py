"""The quality gate between build and publish: dbt's tests (run by `dbt build`), source freshness from
dlt's load records, and volume against the last published run. A failed gate publishes nothing."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from flows.dbt import DbtResult, dbt_source_freshness
from flows.publish import last_published, mart_row_counts
from pipelines.warehouse import destination_name

# A public mart holding less than this share of its rows at the last publish fails the gate.
MIN_VOLUME_RATIO = float(os.environ.get("JOURNEY_GATE_MIN_VOLUME_RATIO", "0.5"))
MIN_ROWS_TO_JUDGE = 20  # tiny tables swing too much to judge


@dataclass
class GateResult:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    freshness: dict[str, str] = field(default_factory=dict)  # source -> pass | warn | error
    volume: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # table -> (now, last published)
    unlinked: dict[str, int] = field(default_factory=dict)  # system -> source records resolved to no person

    @property
    def passed(self) -> bool:
        return not self.problems


class GateFailed(RuntimeError):
    pass


def volume_problems(now: dict[str, int], before: dict[str, int] | None, min_ratio: float) -> list[str]:
    problems = []
    for table, rows in sorted(now.items()):
        previous = (before or {}).get(table)
        if previous is not None and previous >= MIN_ROWS_TO_JUDGE and rows < previous * min_ratio:
            problems.append(f"volume: marts.{table} has {rows:,} rows, down from {previous:,} at the last publish "
                            f"(below {min_ratio:.0%}); check the loads of this run before publishing")
    return problems


def unlinked_records(warehouse: Path) -> dict[str, int]:
    """Source records the identity model could tie to no person (no email of their own and none through
    the orders they paid): kept in the warehouse and counted here, never silently dropped."""
    if destination_name() == "bigquery":
        from flows import bigquery

        return bigquery.unlinked_records()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return dict(con.execute(
            "select system, count(*) from intermediate.int_identity_records_unioned "
            "where customer_id is null group by system order by system").fetchall())


def run_gate(warehouse: Path, published: Path, dbt: DbtResult, min_ratio: float = MIN_VOLUME_RATIO) -> GateResult:
    gate = GateResult()
    gate.problems += [f"dbt: {failure}" for failure in dbt.failures]
    freshness = dbt_source_freshness(warehouse)
    gate.freshness = freshness
    for source, status in freshness.items():
        if status == "error":
            gate.problems.append(f"freshness: no completed load of {source} within its error_after window")
        elif status == "warn":
            gate.warnings.append(f"freshness: {source} is past its warn_after window")
    now = mart_row_counts(warehouse)
    previous = last_published(published)
    before = previous["rows_per_table"] if previous else None
    gate.volume = {t: (n, (before or {}).get(t)) for t, n in now.items()}
    gate.problems += volume_problems(now, before, min_ratio)
    gate.unlinked = unlinked_records(warehouse)
    if gate.unlinked:
        gate.warnings.append("identity: source records linked to no person (no email, no paid order): " +
                             ", ".join(f"{system} {count:,}" for system, count in gate.unlinked.items()))
    return gate
