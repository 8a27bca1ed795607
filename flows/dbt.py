"""Run dbt against the warehouse in its own process, streaming each model's and test's outcome.

A separate process, because dbt-duckdb keeps its connection to the warehouse open for the life of the
process that ran it, which would lock every later step (and reader) out of the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.warehouse import PROJECT_ROOT, dbt_target, duckdb_memory_limit

DBT_PROJECT = PROJECT_ROOT / "dbt_project"
TARGET_PATH = DBT_PROJECT / "target"


@dataclass
class DbtResult:
    models_passed: int = 0
    tests_passed: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class NodeOutcome:
    """One dbt node as it finished: `kind` is model, test, unit_test, seed or snapshot."""

    unique_id: str
    kind: str
    name: str
    status: str  # success, pass, fail, error, warn, skipped, no-op (an exposure: nothing to run)
    message: str
    seconds: float

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error", "runtime error")


class DbtBuildFailed(RuntimeError):
    pass


def dbt_executable() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def _dbt(command: list[str], warehouse: Path) -> subprocess.Popen:
    env = {**os.environ, "JOURNEY_WAREHOUSE": str(warehouse), "JOURNEY_DBT_TARGET": dbt_target(),
           "JOURNEY_DUCKDB_MEMORY_LIMIT": duckdb_memory_limit() or "", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    args = [dbt_executable(), "--log-format", "json", "--no-use-colors", *command, "--project-dir", str(DBT_PROJECT),
            "--profiles-dir", str(DBT_PROJECT), "--target-path", str(TARGET_PATH)]
    return subprocess.Popen(args, cwd=DBT_PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _node_outcome(event: dict) -> NodeOutcome | None:
    """A node's result from dbt's info-level result events (`LogModelResult`, `LogTestResult`, ...)."""
    info, data = event.get("info", {}), event.get("data", {})
    name = info.get("name", "")
    node = data.get("node_info") or {}
    if not (name.startswith("Log") and name.endswith("Result") and node.get("unique_id")):
        return None
    unique_id = node["unique_id"]
    return NodeOutcome(unique_id=unique_id, kind=unique_id.split(".")[0], name=node.get("node_name", unique_id),
                       status=_status(node.get("node_status"), data.get("status")),
                       message=info.get("msg", ""),
                       seconds=float(data.get("execution_time") or 0))


def _status(node_status: object, event_status: object) -> str:
    """The node's status; unit tests report theirs only on the event (their node_status is "None")."""
    chosen = node_status if node_status not in (None, "", "None") else event_status
    return str(chosen or "").lower()


def dbt_parse(warehouse: Path) -> None:
    """Parse the project for this warehouse, so the next build reuses the parse, as every build after the first
    on the same warehouse file does (dbt re-parses fully when the connection settings, the file path among
    them, change: ~5 s here)."""
    process = _dbt(["parse"], warehouse)
    output = process.communicate()[0]
    if process.returncode != 0:
        raise DbtBuildFailed(f"dbt parse failed (exit {process.returncode}):\n  {_messages(output.splitlines()[-40:])}")


def dbt_build(warehouse: Path, select: str | None = None,
              on_node: Callable[[NodeOutcome], None] | None = None, full_refresh: bool = False) -> DbtResult:
    """`dbt build` on the warehouse; `on_node` hears each model and test as it finishes; `full_refresh`
    rebuilds incremental models from scratch. Raises DbtBuildFailed naming every failed model or test.

    Unit tests are left out: their inputs are fixed rows, not the warehouse's data, so a scheduled build learns
    nothing from rerunning them (dbt's own advice: run them in development and CI, where `make test` does,
    through `dbt_unit_tests`)."""
    started = time.monotonic()
    process = _dbt(["build", "--exclude-resource-type", "unit_test"] + (["--select", select] if select else [])
                   + (["--full-refresh"] if full_refresh else []), warehouse)
    return _collect(process, "dbt build", started, on_node)


def _collect(process: subprocess.Popen, what: str, started: float,
             on_node: Callable[[NodeOutcome], None] | None) -> DbtResult:
    """Count a running dbt command's models and tests as they finish, then raise DbtBuildFailed naming every
    failed one if the command failed."""
    result, tail = DbtResult(), []
    for line in process.stdout:
        tail = (tail + [line])[-40:]
        try:
            outcome = _node_outcome(json.loads(line))
        except ValueError:
            continue
        if outcome is None:
            continue
        if outcome.status in ("success", "pass"):
            if outcome.kind == "model":
                result.models_passed += 1
            elif outcome.kind in ("test", "unit_test"):
                result.tests_passed += 1
        elif outcome.failed or outcome.status == "warn":  # not skipped, not an exposure's no-op
            result.failures.append(f"{outcome.kind} {outcome.name}: {outcome.status}: {outcome.message}")
        if on_node:
            on_node(outcome)
    returncode = process.wait()
    result.seconds = time.monotonic() - started
    if returncode != 0:
        detail = "\n  ".join(result.failures) or _messages(tail)
        raise DbtBuildFailed(f"{what} failed (exit {returncode}):\n  {detail}")
    return result


def dbt_unit_tests(warehouse: Path, on_node: Callable[[NodeOutcome], None] | None = None) -> DbtResult:
    """Every dbt unit test (fixed input rows, expected output rows), and nothing else. They read only the
    columns of the models they feed from, so the warehouse must have been built once."""
    started = time.monotonic()
    return _collect(_dbt(["test", "--resource-type", "unit_test"], warehouse), "dbt test", started, on_node)


def _messages(lines: list[str]) -> str:
    out = []
    for line in lines:
        try:
            out.append(json.loads(line).get("info", {}).get("msg", ""))
        except ValueError:
            out.append(line.rstrip())
    return "\n  ".join(m for m in out if m)


def run_dbt(command: list[str], warehouse: Path) -> None:
    """Any other dbt command, raising with dbt's own messages if it fails."""
    process = _dbt(command, warehouse)
    output, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"dbt {' '.join(command)} failed:\n  {_messages(output.splitlines()[-40:])}")


def dbt_source_freshness(warehouse: Path) -> dict[str, str]:
    """Each source's freshness from dlt's load records: `pass`, `warn` or `error`."""
    output = TARGET_PATH / "sources.json"
    output.unlink(missing_ok=True)
    process = _dbt(["source", "freshness", "--output", str(output)], warehouse)
    process.communicate()
    if not output.exists():
        return {}
    results = json.loads(output.read_text()).get("results", [])
    return {r["unique_id"].split(".")[2]: ("error" if r["status"] == "runtime error" else r["status"])
            for r in results}
