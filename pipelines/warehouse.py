"""Where the warehouse lives, and the facts that follow from it (dlt's state directory)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"


def warehouse_path() -> Path:
    """`JOURNEY_WAREHOUSE`, or `data/warehouse.duckdb`; relative paths are taken from the working directory."""
    return Path(os.environ.get("JOURNEY_WAREHOUSE") or DEFAULT_WAREHOUSE).expanduser().resolve()


def pipelines_dir(warehouse: Path) -> Path:
    """dlt's working directory (incremental state) beside the warehouse file, so a new warehouse file
    never inherits another one's cursors."""
    return warehouse.with_name(warehouse.name + ".dlt")
