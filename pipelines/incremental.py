"""High-water marks kept in dlt's resource state, read with an overlap and moved only when a resource
has yielded its last page, so a failed run never moves a cursor past rows it did not load."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dlt


def parse_time(value: str | int | float) -> datetime:
    """A vendor timestamp (ISO-8601 with any offset, `Z`, or Unix seconds) as an aware UTC datetime."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass
class Cursor:
    """The newest update time a resource has loaded; the next run starts `overlap` before it."""

    overlap: timedelta
    full_refresh: bool = False

    def __post_init__(self) -> None:
        self.state = dlt.current.resource_state()
        self.newest: datetime | None = None

    @property
    def since(self) -> datetime | None:
        saved = self.state.get("high_water")
        if self.full_refresh or not saved:
            return None
        return parse_time(saved) - self.overlap

    def track(self, rows: Iterable[dict], field: str) -> Iterator[dict]:
        for row in rows:
            value = row.get(field)
            if value not in (None, ""):
                moment = parse_time(value)
                if self.newest is None or moment > self.newest:
                    self.newest = moment
            yield row

    def commit(self) -> None:
        saved = self.state.get("high_water")
        if self.newest is not None and (not saved or self.newest > parse_time(saved)):
            self.state["high_water"] = self.newest.isoformat()


def with_account(rows: Iterable[dict], account: str) -> list[dict]:
    """Stamp every row with its source account, so several accounts of one vendor never collide."""
    return [{**row, "source_account": account} for row in rows]
