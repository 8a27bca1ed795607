"""The tests' process: environment variables set for a block and restored after it (set back, or removed if
they were unset), and calls that must return in time."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def environment(settings: dict[str, str]) -> Iterator[dict[str, str]]:
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield settings
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def returns_within(call: Callable[[], object], seconds: float = 10.0) -> bool:
    """Whether `call()` returns within `seconds`; run in a daemon thread, so a hang fails one test, not the suite."""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()
