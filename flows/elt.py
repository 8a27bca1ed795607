"""The ELT flow: extract and load each source, build the mart with dbt, summarize."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, task
from prefect.tasks import exponential_backoff

from flows.dbt import dbt_build
from flows.summary import RunSummary, read_headline
from pipelines.http import VendorError
from pipelines.load import LoadResult, load_source, missing_settings
from pipelines.sources import SOURCES
from pipelines.warehouse import warehouse_path


class NothingConfigured(RuntimeError):
    pass


def plan_sources(requested: list[str] | None) -> tuple[list[str], dict[str, list[str]]]:
    """The sources to load (configured ones among those requested) and, for the rest, what they lack."""
    names = requested or list(SOURCES)
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise ValueError(f"unknown source(s) {', '.join(unknown)}; choose from {', '.join(SOURCES)}")
    missing = {n: missing_settings(SOURCES[n]) for n in names}
    ready = [n for n in names if not missing[n]]
    if not ready:
        listing = "; ".join(f"{n}: {', '.join(m)}" for n, m in missing.items())
        raise NothingConfigured(f"no source is configured. Set, as environment variables or in "
                                f".dlt/config.toml and .dlt/secrets.toml: {listing}. Or run with --sandbox.")
    return ready, {n: m for n, m in missing.items() if m}


def _transient(task, task_run, state) -> bool:
    """Retry what can recover by itself; a refused credential or bad request will not."""
    try:
        state.result()
    except VendorError as error:
        return error.status is None or error.status == 429 or error.status >= 500
    except Exception:
        return True
    return False


@task(name="extract-load", task_run_name="extract-load-{source}", retries=2,
      retry_delay_seconds=exponential_backoff(backoff_factor=5), retry_condition_fn=_transient)
def extract_load(source: str, warehouse: str, full_refresh: bool = False) -> LoadResult:
    return load_source(source, Path(warehouse), full_refresh=full_refresh)


@task(name="dbt-build")
def build(warehouse: str):
    return dbt_build(Path(warehouse))


@flow(name="journey-elt", log_prints=True)
def elt_flow(sources: list[str] | None = None, full_refresh: bool = False,
             warehouse: str | None = None) -> RunSummary:
    started = time.monotonic()
    target = Path(warehouse) if warehouse else warehouse_path()
    ready, not_configured = plan_sources(sources)
    summary = RunSummary(warehouse=target, not_configured=not_configured)
    for name in ready:  # loads in turn: DuckDB has one writer
        summary.loads.append(extract_load(name, str(target), full_refresh))
    summary.dbt = build(str(target))
    summary.headline = read_headline(target)
    summary.seconds = time.monotonic() - started
    return summary
