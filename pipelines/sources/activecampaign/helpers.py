"""ActiveCampaign's own quirks: MySQL zero dates in timestamp fields."""

from __future__ import annotations

from datetime import datetime

from pipelines.incremental import parse_time


def moment_of(value: str | None) -> datetime | None:
    """A timestamp field as a UTC time, or None when empty or a MySQL zero date (`0000-00-00`)."""
    if not value or value.startswith("0000-00-00"):
        return None
    return parse_time(value)


def within(value: str | None, since: datetime | None, until: datetime | None) -> bool:
    """Whether a row stamped `value` falls in [since, until]; a row with no usable stamp is kept, since
    it cannot be shown unchanged."""
    moment = moment_of(value)
    return moment is None or ((since is None or moment >= since) and (until is None or moment <= until))
