"""The ELT flow: extract every source (in parallel), load them in turn, build with dbt (every model
and test its own task run), audit with the quality gate, publish, activate (send conversions from the
new marts to the configured destinations), report. The backfill flow re-reads
one source for a date range through the same steps.

Tasks are thin wrappers over plain functions in `pipelines/` and `flows/`; the flows only wire them.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from prefect.tasks import exponential_backoff

from activation.run import activate
from flows.alerts import send_alert
from flows.dbt import NodeOutcome, dbt_build
from flows.gate import GateFailed, run_gate
from flows.lock import WarehouseLock
from flows.publish import publish, published_path
from flows.summary import RunSummary, read_headline, report_markdown
from pipelines.apart import call_apart
from pipelines.http import VendorError
from pipelines.incremental import backfill_window
from pipelines.load import LoadResult, extract_normalize, load_staged, missing_settings
from pipelines.sources import units
from pipelines.warehouse import destination_name, warehouse_path
from webhooks.merge import merge_landed
from webhooks.settings import landing_path


class NothingConfigured(RuntimeError):
    pass


def plan_sources(requested: list[str] | None) -> tuple[list[str], dict[str, list[str]]]:
    """The vendor accounts to load (`shopify`, or `shopify.eu` and `shopify.us` when several are
    configured) among those requested, and for the rest, the settings each lacks."""
    names = units(requested)
    missing = {n: missing_settings(n) for n in names}
    ready = [n for n in names if not missing[n]]
    if not ready:
        listing = "; ".join(f"{n}: {', '.join(m)}" for n, m in missing.items())
        raise NothingConfigured(f"no source is configured. Set, as environment variables or in "
                                f".dlt/config.toml and .dlt/secrets.toml: {listing}. Or run with --sandbox.")
    return ready, {n: m for n, m in missing.items() if m}


def _transient(task, task_run, state) -> bool:
    """Retry what can recover by itself; a refused credential or a bad request will not."""
    try:
        state.result()
    except VendorError as error:
        return error.status is None or error.status == 429 or error.status >= 500
    except Exception:
        return True
    return False


@task(name="extract", task_run_name="extract-{source}", retries=2, timeout_seconds=3600,
      retry_delay_seconds=exponential_backoff(backoff_factor=5), retry_condition_fn=_transient)
def extract(source: str, warehouse: str, full_refresh: bool = False,
            backfill: tuple[str, str] | None = None) -> LoadResult:
    started = time.monotonic()
    result = call_apart(extract_normalize, source, Path(warehouse), full_refresh, backfill)  # every core
    result.seconds = time.monotonic() - started
    return result


@task(name="load", task_run_name="load-{source}", retries=2, retry_delay_seconds=5, timeout_seconds=3600)
def load(source: str, warehouse: str) -> None:
    load_staged(source, Path(warehouse))


@task(name="webhooks-merge")
def merge_webhooks(warehouse: str):
    """Landed webhooks into ops.webhook_landing and, where newer than the pull, the raw tables; the flow
    holds the warehouse lock already."""
    return merge_landed(Path(warehouse), landing_path(Path(warehouse)), hold_lock=False)


@task(name="dbt-node", task_run_name="{outcome.kind} {outcome.name}")
def dbt_node(outcome: NodeOutcome) -> str:
    """One dbt model or test as its own task run, in the state dbt gave it."""
    if outcome.failed:
        raise RuntimeError(f"{outcome.kind} {outcome.name} {outcome.status}: {outcome.message}")
    return outcome.status


@task(name="dbt-build", timeout_seconds=3600)
def build(warehouse: str, full_refresh: bool = False):
    return dbt_build(Path(warehouse), on_node=lambda outcome: dbt_node(outcome, return_state=True),
                     full_refresh=full_refresh)


@task(name="quality-gate")
def gate(warehouse: str, published: str, dbt_result):
    return run_gate(Path(warehouse), Path(published), dbt_result)


@task(name="publish", retries=1, retry_delay_seconds=5)
def publish_marts(warehouse: str, published: str, run_id: str, mode: str, high_water: dict):
    return publish(Path(warehouse), Path(published), run_id, mode, high_water)


@task(name="activate")
def activate_conversions(warehouse: str, published: str, run_id: str):
    """Send what the new marts make sendable; the flow holds the warehouse lock already."""
    return activate(Path(published), Path(warehouse), run_id=run_id, hold_lock=False)


GATE_FAILED = "quality gate failed"


def _alert_on_failure(flow, flow_run_, state) -> None:
    """One alert per failed run; a failed gate says so in its kind."""
    message = state.message or "no message"
    kind = GATE_FAILED if GATE_FAILED in message else "run failed"
    send_alert(kind, f"flow '{flow.name}' run '{flow_run_.name}' ended {state.name}", [
        message[:1500],
        f"flow run id {flow_run_.id}: look at its logs and the 'journey-run-report' artifact in Prefect",
        "published data is unchanged: readers keep the last good run",
    ])


@contextmanager
def _step(summary: RunSummary, name: str):
    started = time.monotonic()
    try:
        yield
    finally:
        summary.steps[name] = time.monotonic() - started


def _run(summary: RunSummary, sources: list[str], full_refresh: bool, backfill: tuple[str, str] | None) -> None:
    warehouse, published = str(summary.warehouse), str(summary.published)
    logger = get_run_logger()
    lock = WarehouseLock(summary.warehouse, purpose=summary.mode)
    with _step(summary, "wait-for-lock"):
        lock.acquire()
    try:
        with _step(summary, "extract"):
            futures = [extract.submit(name, warehouse, full_refresh, backfill) for name in sources]
            summary.loads = [future.result() for future in futures]
        with _step(summary, "load"):
            for name in sources:  # in turn: DuckDB has one writer
                load(name, warehouse)
        with _step(summary, "webhooks-merge"):  # after the pulls: only news newer than them is loaded
            summary.webhooks = merge_webhooks(warehouse)
        with _step(summary, "dbt-build"):
            summary.dbt = build(warehouse, full_refresh)
        with _step(summary, "quality-gate"):
            summary.gate = gate(warehouse, published, summary.dbt)
        if not summary.gate.passed:
            logger.error("quality gate failed; nothing published: %s", "; ".join(summary.gate.problems))
            return
        with _step(summary, "publish"):
            high_water = {result.source: result.high_water for result in summary.loads}
            summary.published_rows = publish_marts(warehouse, published, summary.run_id, summary.mode,
                                                   high_water).rows_per_table
        with _step(summary, "activate"):  # on BigQuery too: flows/published.py, activation/ledger.py
            summary.activation = activate_conversions(warehouse, published, summary.run_id)
        if summary.activation.failed:
            logger.error("activation: %d conversion(s) failed to send; they are retried by the next run while "
                         "young enough (see the run report)", summary.activation.failed)
    finally:
        lock.release()
    summary.headline = read_headline(summary.published)


def _finish(summary: RunSummary, started: float) -> RunSummary:
    summary.seconds = time.monotonic() - started
    create_markdown_artifact(key="journey-run-report", markdown=report_markdown(summary),
                             description=f"journey {summary.mode} run {summary.run_id}")
    if summary.gate is not None and not summary.gate.passed:
        raise GateFailed(f"{GATE_FAILED}, nothing published: " + "; ".join(summary.gate.problems))
    return summary


def _summary(mode: str, warehouse: str | None, published: str | None) -> RunSummary:
    if destination_name() == "bigquery" and not published:
        from flows.bigquery import PUBLISHED_DATASET
        from pipelines.warehouse import bigquery_project

        published = f"{bigquery_project() or '<project>'}.{PUBLISHED_DATASET}"  # the stable views' dataset
        return RunSummary(run_id=flow_run.id or uuid.uuid4().hex, mode=mode,
                          warehouse=Path(warehouse) if warehouse else warehouse_path(), published=Path(published))
    return RunSummary(run_id=flow_run.id or uuid.uuid4().hex, mode=mode,
                      warehouse=Path(warehouse) if warehouse else warehouse_path(),
                      published=Path(published) if published else published_path())


@flow(name="journey-elt", on_failure=[_alert_on_failure], on_crashed=[_alert_on_failure])
def elt_flow(sources: list[str] | None = None, full_refresh: bool = False,
             warehouse: str | None = None, published: str | None = None) -> RunSummary:
    """Extract and load every configured source, build, audit, publish, activate."""
    started = time.monotonic()
    summary = _summary("full-refresh" if full_refresh else "incremental", warehouse, published)
    ready, summary.not_configured = plan_sources(sources)
    _run(summary, ready, full_refresh, None)
    return _finish(summary, started)


@flow(name="journey-backfill", on_failure=[_alert_on_failure], on_crashed=[_alert_on_failure])
def backfill_flow(source: str, start: str, end: str, warehouse: str | None = None,
                  published: str | None = None) -> RunSummary:
    """Re-read one source for [start, end] without moving its incremental cursor, then build, audit and
    publish as a normal run does."""
    started = time.monotonic()
    window = backfill_window(start, end)
    summary = _summary(f"backfill {source} {start}..{end}", warehouse, published)
    ready, _ = plan_sources([source])
    _run(summary, ready, False, window)
    return _finish(summary, started)
