"""The sandbox in a process of its own: `journey sandbox ...` started as a child on a free loopback port, so a
client (a benchmark, an ELT run) and the server do not share one interpreter and its lock.

    with sandbox_process(seed=7, people=10_000, mode="bench") as sandbox:
        requests.get(sandbox.index["stripe"]["base_url"] + "/v1/charges", ...)
        sandbox.peak_rss_kib()  # the server's own high-water mark, from /proc/<pid>/status

It waits until `GET /` answers (a large world takes minutes to build), and stops the child with SIGINT (the
command's own Ctrl-C path), then SIGKILL if it does not end.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    """A port nothing listens on now (the child binds it a moment later; `start` retries if it lost the race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SandboxProcess:
    process: subprocess.Popen
    url: str  # http://127.0.0.1:PORT
    index: dict  # what `GET /` answered

    @property
    def pid(self) -> int:
        return self.process.pid

    def status_kib(self, field: str) -> int | None:
        """A memory figure of the server process in KiB from /proc/<pid>/status (`VmHWM`: peak resident set,
        `VmRSS`: resident now), or None where /proc is not available."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def peak_rss_kib(self) -> int | None:
        return self.status_kib("VmHWM")

    def stop(self) -> int | None:
        """SIGINT (the command stops its server and exits), SIGKILL after STOP_TIMEOUT_S; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def command(port: int, seed: int, people: int, mode: str = "bench", faults: str | None = None,
            python: str = sys.executable) -> list[str]:
    """`journey sandbox ...` as `python -m flows.cli sandbox ...` (no installed script needed)."""
    args = [python, "-m", "flows.cli", "sandbox", "--port", str(port), "--seed", str(seed), "--people", str(people),
            "--mode", mode]
    return args + (["--faults", faults] if faults else [])


def start(seed: int, people: int, mode: str = "bench", faults: str | None = None, port: int | None = None,
          timeout_s: float = 600.0, cwd: Path = ROOT, attempts: int = 3) -> SandboxProcess:
    """Start a sandbox process and wait until it answers `GET /`; raise RuntimeError (with its stderr) if it
    exits first or does not answer within `timeout_s`."""
    for attempt in range(attempts):
        chosen = port or free_port()
        stderr = tempfile.TemporaryFile()
        process = subprocess.Popen(command(chosen, seed, people, mode, faults), cwd=cwd, stdout=subprocess.DEVNULL,
                                   stderr=stderr)
        url = f"http://127.0.0.1:{chosen}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url + "/", timeout=5) as response:
                    stderr.close()
                    return SandboxProcess(process, url, json.loads(response.read()))
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        else:
            SandboxProcess(process, url, {}).stop()
            stderr.close()
            raise RuntimeError(f"sandbox process did not answer at {url}/ within {timeout_s:g} s")
        stderr.seek(0)
        error = stderr.read().decode(errors="replace")
        stderr.close()
        if port is None and "Address already in use" in error and attempt + 1 < attempts:
            continue  # another process took the free port first: try another
        raise RuntimeError(f"sandbox process exited with {process.returncode}: {error[-2000:]}")
    raise AssertionError("not reached")


@contextmanager
def sandbox_process(seed: int, people: int, mode: str = "bench", faults: str | None = None,
                    port: int | None = None, timeout_s: float = 600.0) -> Iterator[SandboxProcess]:
    """A sandbox in its own process for the length of the block, stopped after it."""
    running = start(seed, people, mode=mode, faults=faults, port=port, timeout_s=timeout_s)
    try:
        yield running
    finally:
        running.stop()
