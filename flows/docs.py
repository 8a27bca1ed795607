"""The dbt docs site as one static page (`dbt docs generate --static`), written beside the warehouse."""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import flow

from flows.dbt import TARGET_PATH, run_dbt
from flows.lock import WarehouseLock
from pipelines.warehouse import warehouse_path


def docs_dir(warehouse: Path) -> Path:
    return warehouse.parent / "docs"


def build_docs(warehouse: Path) -> Path:
    """Generate the catalog (reads the warehouse, so under its lock) and copy the static page out."""
    with WarehouseLock(warehouse, purpose="docs"):
        run_dbt(["docs", "generate", "--static"], warehouse)
    out = docs_dir(warehouse)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TARGET_PATH / "static_index.html", out / "index.html")
    return out / "index.html"


@flow(name="journey-docs")
def docs_flow(warehouse: str | None = None) -> str:
    return str(build_docs(Path(warehouse) if warehouse else warehouse_path()))
