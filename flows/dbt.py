"""Run dbt against the warehouse in its own process and count what passed.

A separate process, because dbt-duckdb keeps its connection to the warehouse open for the life of the
process that ran it, which would lock every later step (and reader) out of the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.warehouse import PROJECT_ROOT

DBT_PROJECT = PROJECT_ROOT / "dbt_project"


@dataclass
class DbtResult:
    models_passed: int = 0
    tests_passed: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


class DbtBuildFailed(RuntimeError):
    pass


def dbt_executable() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def dbt_build(warehouse: Path, select: str | None = None) -> DbtResult:
    """`dbt build` on the warehouse; raises DbtBuildFailed naming every failed model or test."""
    target_path = DBT_PROJECT / "target"
    args = [dbt_executable(), "build", "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
            "--target-path", str(target_path)]
    if select:
        args += ["--select", select]
    env = {**os.environ, "JOURNEY_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    started = time.monotonic()
    completed = subprocess.run(args, cwd=DBT_PROJECT, env=env, capture_output=True, text=True)
    result = DbtResult(seconds=time.monotonic() - started)
    results_file = target_path / "run_results.json"
    if results_file.exists() and results_file.stat().st_mtime >= time.time() - result.seconds - 1:
        for node in json.loads(results_file.read_text())["results"]:
            kind, _, name = node["unique_id"].partition(".")
            if node["status"] in ("success", "pass"):
                if kind == "model":
                    result.models_passed += 1
                elif kind in ("test", "unit_test"):
                    result.tests_passed += 1
            elif node["status"] != "skipped":
                result.failures.append(f"{kind} {name.split('.')[-1]}: {node['status']}: {node.get('message')}")
    if completed.returncode != 0:
        detail = "\n  ".join(result.failures) or completed.stdout[-3000:] + completed.stderr[-2000:]
        raise DbtBuildFailed(f"dbt build failed (exit {completed.returncode}):\n  {detail}")
    return result
