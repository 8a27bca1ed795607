"""A vendor's extract in a process of its own, so the vendors' extracts run on every core.

The run extracts its vendors at once (flows/elt.py), and most of an extract's time is Python: JSON parsed,
pages turned into Arrow tables (pipelines/arrow.py), dicts through dlt's normalizer. Threads of one interpreter
take turns on its lock, so four extracts in threads used little more than one core; in processes of their own
each has its own. At 100,000 people the full run took 82 s in processes against 95 s in threads, at 10,000
people 11.6 s against 10.4 s: a child pays ~1 s to start and import, a cost that does not grow with the data
(benchmarks/HISTORY.md, "Extracts in processes").

`call_apart(function, *args)` runs a module-level function in a fresh interpreter (`python -c`, with the
parent's environment, working directory and import path) that ends with the call, so what the extract
allocated goes back to the system when it is done. A plain child process rather than `multiprocessing`, whose
children re-run the parent's main module (the `journey` CLI, pytest) before they start.

The child's log records at WARNING and above are replayed into the parent's loggers when it ends, where
Prefect's run log and the console see them as their own. An error the child raised is raised here as itself
(a `VendorError` keeps its status, which the flow's retry rule reads), with the child's traceback as a note;
one that cannot cross between processes becomes `ApartError` with its type, message and traceback.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
FORWARDED_LEVEL = logging.WARNING


class ApartError(RuntimeError):
    """An error raised in a child that could not be sent back as itself."""


@dataclass
class _Outcome:
    value: Any = None
    error: BaseException | None = None
    records: list[logging.LogRecord] = field(default_factory=list)


class _Keep(logging.Handler):
    """Keeps the child's records, made plain (message formatted, traceback as text) so they pickle."""

    def __init__(self) -> None:
        super().__init__(FORWARDED_LEVEL)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = record.exc_text or "".join(traceback.format_exception(*record.exc_info))
            record.exc_info = None
        self.records.append(record)


def _portable(error: BaseException) -> BaseException:
    """The error itself if it survives pickling (with the child's traceback as a note), else an ApartError."""
    where = "".join(traceback.format_exception(error))
    try:
        error.add_note(f"(raised in a child process)\n{where}")
        copy = pickle.loads(pickle.dumps(error))
        if type(copy) is type(error) and str(copy) == str(error):
            return error
    except Exception:  # noqa: BLE001 - any failure to cross means it is sent as text
        pass
    return ApartError(f"{type(error).__name__}: {error}\n(raised in a child process)\n{where}")


def _run(function: Callable[..., Any], args: tuple) -> _Outcome:
    keep = _Keep()
    logging.getLogger().addHandler(keep)
    outcome = _Outcome()
    try:
        outcome.value = function(*args)
    except BaseException as error:  # noqa: BLE001 - every failure goes back to the parent to raise there
        outcome.error = _portable(error)
    finally:
        logging.getLogger().removeHandler(keep)
    outcome.records = keep.records
    return outcome


def _name(function: Callable) -> str:
    """How errors name the function called apart."""
    return getattr(function, "__name__", repr(function))


def _child() -> None:
    """The child's side: the call from `<folder>/call.pickle`, its outcome to `<folder>/outcome.pickle`."""
    folder = Path(sys.argv[1])
    function, args = pickle.loads((folder / "call.pickle").read_bytes())
    outcome = _run(function, args)
    try:
        sent = pickle.dumps(outcome)
    except Exception as error:  # noqa: BLE001 - a result that cannot cross is the call's error
        sent = pickle.dumps(_Outcome(error=ApartError(
            f"{_name(function)} returned a value that cannot be sent back: {error}"),
            records=outcome.records))
    (folder / "outcome.pickle").write_bytes(sent)


def call_apart(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a fresh child process: its return value, or its error raised here. `function` is
    module-level and its arguments and result pickle (they cross between processes)."""
    with tempfile.TemporaryDirectory(prefix="journey-apart-") as folder:
        (Path(folder) / "call.pickle").write_bytes(pickle.dumps((function, args)))
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(entry for entry in sys.path if entry)}
        done = subprocess.run([sys.executable, "-c", "from pipelines.apart import _child; _child()", folder],
                              env=environment, check=False)
        try:
            outcome: _Outcome = pickle.loads((Path(folder) / "outcome.pickle").read_bytes())
        except FileNotFoundError:
            raise ApartError(f"{_name(function)} ended its process (exit {done.returncode}) "
                             f"without a result: killed or out of memory? Its output above says more.") from None
    for record in outcome.records:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)
    if outcome.error is not None:
        raise outcome.error
    return outcome.value
