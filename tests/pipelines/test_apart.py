"""`call_apart` (pipelines/apart.py), the process each vendor's extract runs in: what comes back from the child
is what the call would have returned or raised in process, its warnings reach the parent's loggers, and it
sees the parent's environment as it is at the call."""

from __future__ import annotations

import logging
import os

import pytest

from pipelines.apart import ApartError, call_apart
from pipelines.http import VendorError


# --- run in the child (module-level, so the child imports them by name) ---------------------------------------
def child_facts(key: str) -> dict:
    logging.getLogger("pipelines.arrow").warning("a warning from pid %s", os.getpid())
    logging.getLogger("pipelines.arrow").info("an info record, not forwarded")
    return {"pid": os.getpid(), "value": os.environ.get(key), "cwd": os.getcwd()}


def refused_by_vendor() -> None:
    raise VendorError("stripe", "GET", "http://127.0.0.1:9/stripe/v1/charges", 429, "Too many requests", "Wait.")


class TwoPartError(Exception):
    def __init__(self, first: str, second: str):
        super().__init__(f"{first} and {second}")  # pickles as (message,), which __init__ refuses


def raises_unpicklable() -> None:
    raise TwoPartError("one", "two")


def dies() -> None:
    os._exit(3)


def returns_a_lock():
    import threading

    return threading.Lock()


# --- tests ----------------------------------------------------------------------------------------------------
def test_returns_the_childs_value_with_the_parents_environment_at_the_call(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("JOURNEY_APART_PROBE", "set just now")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="pipelines.arrow"):
        facts = call_apart(child_facts, "JOURNEY_APART_PROBE")
    assert facts["pid"] != os.getpid()
    assert facts["value"] == "set just now" and facts["cwd"] == str(tmp_path)
    forwarded = [record.getMessage() for record in caplog.records if record.name == "pipelines.arrow"]
    assert forwarded == [f"a warning from pid {facts['pid']}"]  # WARNING and above only


def test_a_vendor_error_crosses_as_itself_with_its_status():
    with pytest.raises(VendorError) as raised:
        call_apart(refused_by_vendor)
    assert raised.value.status == 429 and raised.value.vendor == "stripe"
    assert str(raised.value) == ("stripe: GET http://127.0.0.1:9/stripe/v1/charges failed with HTTP 429: "
                                 "Too many requests. Wait.")
    assert any("refused_by_vendor" in note for note in raised.value.__notes__)  # the child's traceback


def test_an_error_that_cannot_cross_arrives_as_text_naming_it():
    with pytest.raises(ApartError, match=r"TwoPartError: one and two") as raised:
        call_apart(raises_unpicklable)
    assert "raises_unpicklable" in str(raised.value)


def test_a_child_that_dies_without_a_result_is_an_error_naming_its_exit_code():
    with pytest.raises(ApartError, match=r"dies ended its process \(exit 3\) without a result"):
        call_apart(dies)


def test_a_result_that_cannot_cross_is_an_error_naming_the_function():
    with pytest.raises(ApartError, match=r"returns_a_lock returned a value that cannot be sent back"):
        call_apart(returns_a_lock)
