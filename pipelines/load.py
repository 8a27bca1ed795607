"""Run sources into the warehouse: extract and normalize (parallel-safe, no warehouse writes), then
load (one at a time, under the warehouse lock). Also: which settings an unconfigured vendor lacks."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import dlt
import pandas  # noqa: F401 - imported before extraction threads start: dlt imports it lazily, and two
import pyarrow  # noqa: F401 - threads importing it at once can meet a partially initialized module
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.schema.exceptions import DataValidationError
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines import accounts
from pipelines.http import VendorError
from pipelines.sources import SOURCES, source_of
from pipelines.warehouse import (
    bigquery_emulator,
    bigquery_location,
    bigquery_project,
    destination_name,
    duckdb_load_memory_limit,
    emulator_credentials,
    pipelines_dir,
)


@dataclass
class LoadResult:
    source: str
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows loaded this run
    new_columns: dict[str, list[str]] = field(default_factory=dict)  # existing table -> columns first seen now
    high_water: dict[str, str] = field(default_factory=dict)  # resource -> cursor after this run
    seconds: float = 0.0


E = TypeVar("E", bound=BaseException)


class SourceNotConfigured(RuntimeError):
    pass


class SchemaChanged(RuntimeError):
    """A vendor sent a column in another type than the one it has in the warehouse: the run stops before
    loading anything, rather than land the values in a variant column no model reads."""


# Pages yielded as Arrow tables (pipelines/arrow.py) get their `_dlt_id` and `_dlt_load_id` from dlt, as rows
# made from dicts do, so both kinds of page land in the same columns.
for _setting in ("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID", "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"):
    os.environ.setdefault(_setting, "true")

# New tables and columns land (and are named in the run summary); a column changing type stops the run.
SCHEMA_CONTRACT = {"tables": "evolve", "columns": "evolve", "data_type": "freeze"}


def _cause_in(error: BaseException | None, kind: type[E]) -> E | None:
    """The first error of `kind` inside dlt's wrapping (its causes and contexts): the vendor's own error, so
    the user reads it first and retries can judge it, or a schema-contract violation."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kind):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def missing_settings(unit: str) -> list[str]:
    """The settings a vendor (or one of its accounts, `shopify.eu`) still needs, by their dlt names
    (`sources.shopify.base_url`, `sources.shopify.eu.base_url`)."""
    source, account = source_of(unit)
    return [accounts.setting_name(key, account) for key in source.settings.REQUIRED
            if accounts.lookup(key, account, secret=key == source.settings.CREDENTIAL) is None]


def make_destination(warehouse: Path):
    """dlt's destination for the configured warehouse: the DuckDB file, or BigQuery with dlt's own settings
    (project, location and credentials under `destination.bigquery`, never in code)."""
    if destination_name() == "bigquery":
        project = bigquery_project()
        settings = {"location": bigquery_location()}
        if project:
            settings["project_id"] = project
        if bigquery_emulator():
            if not project:
                raise ValueError("BIGQUERY_EMULATOR_HOST is set: set JOURNEY_BIGQUERY_PROJECT, the emulator's project")
            from dlt.common.configuration.specs import GcpOAuthCredentials

            credentials = GcpOAuthCredentials()
            credentials.parse_native_representation(emulator_credentials(project))
            credentials.project_id = project
            settings["credentials"] = credentials
        return dlt.destinations.bigquery(**settings)
    return dlt.destinations.duckdb(DuckDbCredentials(str(warehouse),
                                                     global_config={"memory_limit": duckdb_load_memory_limit()}))


def make_staging():
    """For large BigQuery loads, a GCS bucket (`JOURNEY_BIGQUERY_STAGING_BUCKET`, `gs://...`) that load jobs
    read the parquet files from; dlt's filesystem credentials as usual. Unset: files are uploaded directly."""
    bucket = os.environ.get("JOURNEY_BIGQUERY_STAGING_BUCKET")
    if destination_name() == "bigquery" and bucket:
        return dlt.destinations.filesystem(bucket_url=bucket)
    return None


def make_pipeline(unit: str, warehouse: Path) -> dlt.Pipeline:
    """The dlt pipeline of one vendor account (`shopify`, `shopify.eu`): its own state and cursors, loading
    into the vendor's dataset."""
    source, _ = source_of(unit)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=f"journey_{unit.replace('.', '_')}",
        destination=make_destination(warehouse),
        staging=make_staging(),
        dataset_name=source.dataset,
        pipelines_dir=str(pipelines_dir(warehouse)),
    )


def _columns(pipeline: dlt.Pipeline) -> dict[str, set[str]]:
    if not pipeline.default_schema_name:
        return {}
    schema = pipeline.default_schema
    return {name: set(table.get("columns", {})) for name, table in schema.tables.items() if not name.startswith("_")}


def _high_water(pipeline: dlt.Pipeline, source: str) -> dict[str, str]:
    resources = pipeline.state.get("sources", {}).get(source, {}).get("resources", {})
    return {name: state["high_water"] for name, state in resources.items() if "high_water" in state}


def _forget_cursors(pipeline: dlt.Pipeline, state_key: str) -> None:
    """A full re-read of one of several accounts: its cursors are forgotten and every row is merged again.
    Its tables are not dropped, as they are for a vendor's only account: they hold the other accounts'
    rows too."""
    with pipeline.managed_state() as state:
        state.get("sources", {}).pop(state_key, None)


def extract_normalize(name: str, warehouse: Path, full_refresh: bool = False,
                      backfill: tuple[str, str] | None = None) -> LoadResult:
    """Read one vendor account (`shopify`, `shopify.eu`) and turn its pages into load packages on disk; the
    warehouse is not written.

    `full_refresh` drops the source's tables and cursors and reads everything again (for one of several
    accounts: forgets its cursors and merges everything again, see `_forget_cursors`); `backfill`
    (start, end) re-reads that window and leaves the cursors where they were.
    """
    source, account = source_of(name)
    window = {"backfill_start": backfill[0], "backfill_end": backfill[1]} if backfill else {}
    try:
        dlt_source = source.source_for(account)(**window)
    except ConfigFieldMissingException as error:
        raise SourceNotConfigured(f"{name} is not configured: set {', '.join(missing_settings(name)) or error}") \
            from None
    pipeline = make_pipeline(name, warehouse)
    before = _columns(pipeline)
    refresh = "drop_sources" if full_refresh and not account else None
    if full_refresh and account:
        _forget_cursors(pipeline, dlt_source.name)
    try:
        pipeline.extract(dlt_source, refresh=refresh, loader_file_format="parquet", schema_contract=SCHEMA_CONTRACT)
        pipeline.normalize()
    except PipelineStepFailed as failed:
        vendor_error = _cause_in(failed, VendorError)
        if vendor_error is not None:
            raise vendor_error from failed
        violation = _cause_in(failed, DataValidationError)
        if violation is None:
            raise
        # dlt names the column it would have made for the new type `<column>__v_<type>`
        column, _, sent = violation.column_name.rpartition("__v_") if "__v_" in violation.column_name else (
            violation.column_name, "", "another type")
        existing = (violation.table_schema or {}).get("columns", {}).get(column, {}).get("data_type", "declared")
        pipeline.drop_pending_packages()
        raise SchemaChanged(
            f"{name}: column {column!r} of table {violation.table_name!r} arrived as {sent}, not the {existing} "
            f"it has in the warehouse; nothing of this run was loaded. The "
            f"vendor changed the field: check the API version configured for {name} (README, Configuration), "
            f"then either pin the version that sends the old type or drop the table's column and re-run with "
            f"--full-refresh.") from None
    after = _columns(pipeline)
    counts = pipeline.last_trace.last_normalize_info.row_counts
    return LoadResult(
        name,
        rows={t: n for t, n in sorted(counts.items()) if not t.startswith("_dlt")},
        new_columns={t: sorted(after[t] - cols) for t, cols in before.items() if t in after and after[t] - cols},
        high_water=_high_water(pipeline, dlt_source.name),
    )


def load_staged(name: str, warehouse: Path) -> None:
    """Load every package `extract_normalize` left for this vendor account (and any a failed run left)."""
    make_pipeline(name, warehouse).load()


def load_source(name: str, warehouse: Path, full_refresh: bool = False,
                backfill: tuple[str, str] | None = None) -> LoadResult:
    """Extract, normalize and load one vendor account; returns the rows per table this run loaded."""
    result = extract_normalize(name, warehouse, full_refresh, backfill)
    load_staged(name, warehouse)
    return result


def settings_from_index(index: dict, destinations: bool = True) -> dict[str, str]:
    """dlt settings (as environment variables) pointing every source, and with `destinations` every
    activation destination (GA4, Meta, the CRMs' writes), at a sandbox, from its `GET /` index."""
    from activation.run import DESTINATIONS

    env = {}
    sections = [("SOURCES", name) for name in SOURCES]
    sections += [("ACTIVATION", name) for name in DESTINATIONS] if destinations else []
    for section, name in sections:
        entry = index.get(name)
        if not entry:
            continue
        env[f"{section}__{name.upper()}__BASE_URL"] = entry["base_url"]
        for key, value in entry["credentials"].items():
            env[f"{section}__{name.upper()}__{key.upper()}"] = value
    return env
