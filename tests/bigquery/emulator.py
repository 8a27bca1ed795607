"""A local BigQuery emulator (bqemulator, DuckDB-backed, SQLGlot-translated) in its own process and its own
virtual environment (`.venv-bqemulator/`, made by `make bqemulator`), so its pins never constrain the
project's. The official clients reach it through `BIGQUERY_EMULATOR_HOST`.

Run as a script by the emulator's own Python (`python tests/bigquery/emulator.py --install-spatial`), it
puts DuckDB's `spatial` extension, which bqemulator loads at start and cannot download here, where that
DuckDB looks for it. Imported (by the tests), it starts and stops emulators. Standard library only.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VENV = PROJECT_ROOT / ".venv-bqemulator"
HOME = VENV / "home"  # the emulator's HOME: its DuckDB extensions live here, not in the user's ~/.duckdb
PROJECT = "journey-emulator"


def install_spatial() -> Path:
    """Copy the `duckdb-extension-spatial` package's file to `~/.duckdb/extensions/v<duckdb>/<platform>/` of
    the emulator's HOME. Run by the emulator's Python (it imports that environment's duckdb)."""
    import duckdb
    import duckdb_extension_spatial

    version = f"v{duckdb.__version__}"
    platform = duckdb.connect().execute("pragma platform").fetchone()[0]
    source = Path(duckdb_extension_spatial.__file__).parent / "extensions" / version / "spatial.duckdb_extension"
    target = HOME / ".duckdb" / "extensions" / version / platform / "spatial.duckdb_extension"
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmulatorNotInstalled(RuntimeError):
    pass


class BigQueryEmulator:
    """`with BigQueryEmulator() as emulator:` a fresh, in-memory emulator on a free port; `emulator.env()` is
    the configuration that points dlt, dbt and the stack's readers at it."""

    def __init__(self, project: str = PROJECT, startup_timeout: float = 90.0):
        self.project = project
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="bqemulator-", suffix=".log")[1])

    def env(self) -> dict[str, str]:
        return {
            "JOURNEY_DESTINATION": "bigquery",
            "BIGQUERY_EMULATOR_HOST": self.url,
            "JOURNEY_BIGQUERY_PROJECT": self.project,
            # the emulator's load jobs read plain files only
            "NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION": "true",
        }

    def start(self) -> BigQueryEmulator:
        executable = VENV / "bin" / "bqemulator"
        if not executable.exists():
            raise EmulatorNotInstalled(f"{executable} is missing: run `make bqemulator` (make test does)")
        subprocess.run([str(VENV / "bin" / "python"), __file__, "--install-spatial"], check=True,
                       capture_output=True)
        env = {**os.environ, "HOME": str(HOME)}
        for key in ("BIGQUERY_EMULATOR_HOST", "PYTHONPATH", "VIRTUAL_ENV"):
            env.pop(key, None)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(executable), "start", "--ephemeral", "--rest-host", "127.0.0.1", "--rest-port", str(self.port),
                 "--grpc-port", "0", "--project", self.project, "--log-level", "warning", "--log-format", "json"],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        atexit.register(self.stop)  # never left running by an interrupted session
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        probe = f"{self.url}/bigquery/v2/projects/{self.project}/datasets"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bqemulator exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(probe, timeout=2) as response:
                    if response.status == 200 and "datasetList" in json.loads(response.read()).get("kind", ""):
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"bqemulator not ready within {self.startup_timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def __enter__(self) -> BigQueryEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--install-spatial"]:
        print(install_spatial())
    else:
        sys.exit("usage: emulator.py --install-spatial")
