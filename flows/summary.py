"""What a run did, as a person reads it: rows per table, step durations, dbt results, the gate,
what was published and the headline figures. Printed by the CLI and kept as a Prefect artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from flows.dbt import DbtResult
from pipelines.load import LoadResult


@dataclass
class Headline:
    people: int
    customers: int  # people with at least one counted order
    orders: int
    net_revenue: Decimal


@dataclass
class RunSummary:
    run_id: str
    warehouse: Path
    published: Path
    mode: str = "incremental"
    loads: list[LoadResult] = field(default_factory=list)
    dbt: DbtResult | None = None
    gate: object | None = None  # flows.gate.GateResult
    published_rows: dict[str, int] | None = None  # None: nothing published
    headline: Headline | None = None
    not_configured: dict[str, list[str]] = field(default_factory=dict)
    activation: object | None = None  # activation.run.ActivationReport; None: not reached
    webhooks: object | None = None  # webhooks.merge.MergeResult; None: not reached
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds
    seconds: float = 0.0


def read_headline(published: Path) -> Headline:
    """From the published dim_customers, on either warehouse (flows/published.py)."""
    from flows.published import open_published

    with open_published(published) as con:
        people, customers, orders, net = con.execute(
            "select count(*), count(*) filter (where lifetime_orders > 0), "
            "coalesce(sum(lifetime_orders), 0), coalesce(sum(lifetime_net_revenue), 0) "
            "from marts.dim_customers").fetchone()
    return Headline(people, customers, int(orders), Decimal(net))


def format_summary(summary: RunSummary) -> str:
    lines = ["", f"Run {summary.run_id} ({summary.mode})", "Rows loaded:"]
    for load in summary.loads:
        for table, rows in load.rows.items():
            lines.append(f"  {load.source:<15} {table:<40} {rows:>9,}")
        if not load.rows:
            lines.append(f"  {load.source:<15} (nothing new)")
        for table, columns in load.new_columns.items():
            lines.append(f"  {load.source:<15} new columns in {table}: {', '.join(columns)}")
    for name, missing in summary.not_configured.items():
        lines.append(f"  {name:<15} skipped, not configured: set {', '.join(missing)}")
    if summary.webhooks is not None and (summary.webhooks.landed or summary.webhooks.outcomes):
        from webhooks.merge import format_merge

        lines.append(format_merge(summary.webhooks))
    if summary.dbt:
        lines.append(f"dbt build: {summary.dbt.models_passed} models and {summary.dbt.tests_passed} tests passed "
                     f"in {summary.dbt.seconds:.1f}s")
    if summary.gate is not None:
        gate = summary.gate
        fresh = ", ".join(f"{s} {status}" for s, status in sorted(gate.freshness.items())) or "not checked"
        lines.append(f"Quality gate: {'passed' if gate.passed else 'FAILED'} (freshness: {fresh})")
        lines += [f"  {problem}" for problem in gate.problems + gate.warnings]
    lines.append(f"Warehouse: {summary.warehouse}")
    if summary.published_rows is not None:
        tables = ", ".join(f"{t} {n:,}" for t, n in summary.published_rows.items())
        lines.append(f"Published: {summary.published} ({tables})")
    else:
        lines.append(f"Published: nothing; readers keep the last good data in {summary.published}")
    if summary.headline:
        h = summary.headline
        lines.append(f"Mart: {h.people:,} people, {h.customers:,} customers, {h.orders:,} orders, "
                     f"net revenue {h.net_revenue:,.2f}")
    if summary.activation is not None:
        from activation.run import format_report

        lines.append(format_report(summary.activation))
    if summary.steps:
        lines.append("Steps: " + ", ".join(f"{step} {seconds:.1f}s" for step, seconds in summary.steps.items()))
    lines.append(f"Done in {summary.seconds:.1f}s.")
    return "\n".join(lines)


def report_markdown(summary: RunSummary) -> str:
    """The run report as a Prefect markdown artifact."""
    out = [f"# journey run `{summary.run_id}` ({summary.mode})", "", "## Rows loaded", "",
           "| source | table | rows |", "|---|---|---:|"]
    out += [f"| {load.source} | {t} | {n:,} |" for load in summary.loads for t, n in load.rows.items()]
    new = [f"- {load.source}.{t}: {', '.join(cols)}" for load in summary.loads for t, cols in load.new_columns.items()]
    out += ["", "## New columns", ""] + (new or ["none"])
    if summary.webhooks is not None:
        from webhooks.merge import format_merge

        out += ["", "## Webhooks", "", format_merge(summary.webhooks)]
    out += ["", "## Steps", "", "| step | seconds |", "|---|---:|"]
    out += [f"| {step} | {seconds:.1f} |" for step, seconds in summary.steps.items()]
    if summary.dbt:
        out += ["", "## dbt", "", f"{summary.dbt.models_passed} models and {summary.dbt.tests_passed} tests passed; "
                f"{len(summary.dbt.failures)} failed."] + [f"- {f}" for f in summary.dbt.failures]
    if summary.gate is not None:
        gate = summary.gate
        out += ["", "## Quality gate", "", "passed" if gate.passed else "**FAILED**", ""]
        out += [f"- freshness of {s}: {status}" for s, status in sorted(gate.freshness.items())]
        out += [f"- volume of marts.{t}: {now:,} (last published: {before if before is not None else '-'})"
                for t, (now, before) in sorted(gate.volume.items())]
        out += [f"- {p}" for p in gate.problems + gate.warnings]
    out += ["", "## Published", ""]
    if summary.published_rows is not None:
        out += [f"`{summary.published}`:"] + [f"- marts.{t}: {n:,} rows" for t, n in summary.published_rows.items()]
    else:
        out += ["nothing; readers keep the last good data"]
    if summary.headline:
        h = summary.headline
        out += ["", "## Headline", "", f"{h.people:,} people, {h.customers:,} customers, {h.orders:,} orders, "
                f"net revenue {h.net_revenue:,.2f}"]
    if summary.activation is not None:
        from activation.run import format_report

        out += ["", "## Activation", "", "```", format_report(summary.activation), "```"]
    return "\n".join(out)
