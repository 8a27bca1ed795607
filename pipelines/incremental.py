"""High-water marks kept in dlt's resource state, read with an overlap and moved only when a resource
has yielded its last page, so a failed run never moves a cursor past rows it did not load.

A backfill reads an explicit window instead and leaves the saved mark where it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dlt


def parse_time(value: str | int | float | datetime) -> datetime:
    """A vendor timestamp (ISO-8601 with any offset, `Z`, or Unix seconds) as an aware UTC datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    else:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass
class Cursor:
    """The newest update time a resource has loaded; the next run starts `overlap` before it.

    With `backfill=(start, end)` the window is read as given and the saved mark is not moved.
    """

    overlap: timedelta
    backfill: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        self.state = dlt.current.resource_state()
        self.newest: datetime | None = None

    @property
    def since(self) -> datetime | None:
        if self.backfill:
            return parse_time(self.backfill[0])
        saved = self.state.get("high_water")
        return parse_time(saved) - self.overlap if saved else None

    @property
    def until(self) -> datetime | None:
        return parse_time(self.backfill[1]) if self.backfill else None

    def track(self, rows: Iterable[dict], field: str) -> Iterator[dict]:
        for row in rows:
            value = row.get(field)
            if value not in (None, ""):
                moment = parse_time(value)
                if self.newest is None or moment > self.newest:
                    self.newest = moment
            yield row

    def commit(self) -> None:
        if self.backfill:
            return
        saved = self.state.get("high_water")
        if self.newest is not None and (not saved or self.newest > parse_time(saved)):
            self.state["high_water"] = self.newest.isoformat()


def with_account(rows: Iterable[dict], account: str) -> list[dict]:
    """Stamp every row with its source account, so several accounts of one vendor never collide."""
    return [{**row, "source_account": account} for row in rows]


def backfill_window(start: str | None, end: str | None) -> tuple[str, str] | None:
    if (start is None) != (end is None):
        raise ValueError("a backfill needs both a start and an end")
    if start is None:
        return None
    if parse_time(start) >= parse_time(end):
        raise ValueError(f"backfill start {start} is not before its end {end}")
    return (start, end)
