"""Run one source into the warehouse, and report what was missing when a vendor is not configured."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines.http import VendorError
from pipelines.sources import SOURCES, Source
from pipelines.warehouse import pipelines_dir


@dataclass
class LoadResult:
    source: str
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows loaded this run
    pages: int = 0


def _vendor_error_in(error: BaseException) -> VendorError | None:
    """The vendor's own error inside dlt's wrapping, so the user reads it first and retries can judge it."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, VendorError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def missing_settings(source: Source) -> list[str]:
    """The settings a vendor still needs, by their dlt names (`sources.shopify.base_url`)."""
    missing = []
    for key in source.settings.REQUIRED:
        provider = dlt.secrets if key == source.settings.CREDENTIAL else dlt.config
        if provider.get(key) in (None, ""):
            missing.append(key)
    return missing


def make_pipeline(source: Source, warehouse: Path) -> dlt.Pipeline:
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=f"journey_{source.name}",
        destination=dlt.destinations.duckdb(str(warehouse)),
        dataset_name=source.dataset,
        pipelines_dir=str(pipelines_dir(warehouse)),
    )


def load_source(name: str, warehouse: Path, full_refresh: bool = False) -> LoadResult:
    """Extract, normalize and load one vendor; returns the rows per table this run loaded."""
    source = SOURCES[name]
    try:
        dlt_source = source.factory(full_refresh=full_refresh)
    except ConfigFieldMissingException as error:
        raise RuntimeError(f"{name} is not configured: set {', '.join(missing_settings(source)) or error}") from None
    pipeline = make_pipeline(source, warehouse)
    try:
        pipeline.run(dlt_source, loader_file_format="parquet")
    except PipelineStepFailed as failed:
        vendor_error = _vendor_error_in(failed)
        if vendor_error is None:
            raise
        raise vendor_error from failed
    counts = pipeline.last_trace.last_normalize_info.row_counts
    return LoadResult(name, {t: n for t, n in sorted(counts.items()) if not t.startswith("_dlt")})


def settings_from_index(index: dict) -> dict[str, str]:
    """dlt settings (as environment variables) pointing every source at a sandbox, from its `GET /` index."""
    env = {}
    for name in SOURCES:
        entry = index.get(name)
        if not entry:
            continue
        env[f"SOURCES__{name.upper()}__BASE_URL"] = entry["base_url"]
        for key, value in entry["credentials"].items():
            env[f"SOURCES__{name.upper()}__{key.upper()}"] = value
    return env
