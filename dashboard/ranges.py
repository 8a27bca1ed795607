"""Date ranges for the dashboard: presets counted back from the data's as-of date, and comparison periods.

Presets count back from the as-of date (the latest day in the published `rpt_daily_kpis`), never from the
wall clock (DESIGN.md, "As-of, not wall clock"): the same published data always shows the same figures,
and a sandbox world whose clock is in the past still shows full panels. Ranges are whole UTC days, both
ends included, and the as-of day itself is part of "last N days" (it is the newest data there is).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

PRESETS: dict[str, str] = {
    "last_7": "Last 7 days",
    "last_28": "Last 28 days",
    "last_90": "Last 90 days",
    "month_to_date": "Month to date",
    "year_to_date": "Year to date",
    "custom": "Custom",
}
DEFAULT_PRESET = "last_28"

COMPARISONS: dict[str, str] = {
    "previous_period": "Previous period",
    "previous_year": "Same period last year",
}
DEFAULT_COMPARISON = "previous_period"


@dataclass(frozen=True)
class DateRange:
    """Whole UTC days from `start` to `end`, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"a range ends on or after it starts: {self.start} .. {self.end}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def label(self) -> str:
        return f"{self.start:%d %b %Y} – {self.end:%d %b %Y}"


def preset_range(preset: str, as_of: date, custom: DateRange | None = None) -> DateRange:
    """The range a preset names, ending on the as-of date; `custom` is returned as given."""
    if preset == "custom":
        if custom is None:
            raise ValueError("the custom preset needs a range")
        return custom
    if preset.startswith("last_"):
        days = int(preset.removeprefix("last_"))
        return DateRange(as_of - timedelta(days=days - 1), as_of)
    if preset == "month_to_date":
        return DateRange(as_of.replace(day=1), as_of)
    if preset == "year_to_date":
        return DateRange(as_of.replace(month=1, day=1), as_of)
    raise ValueError(f"unknown preset {preset!r}; one of {', '.join(PRESETS)}")


def comparison_range(current: DateRange, comparison: str) -> DateRange:
    """The period a range is compared with.

    `previous_period`: the same number of days just before it. `previous_year`: the same calendar days one
    year earlier; 29 February, which last year lacks, becomes 28 February (so a month-to-date range ending
    on 29 February compares with 1-28 February, the whole month, as a reader expects).
    """
    if comparison == "previous_period":
        end = current.start - timedelta(days=1)
        return DateRange(end - timedelta(days=current.days - 1), end)
    if comparison == "previous_year":
        return DateRange(_year_earlier(current.start), _year_earlier(current.end))
    raise ValueError(f"unknown comparison {comparison!r}; one of {', '.join(COMPARISONS)}")


def _year_earlier(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February in a leap year
        return day.replace(year=day.year - 1, day=28)
