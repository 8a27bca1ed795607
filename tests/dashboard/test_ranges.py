"""Presets count back from the as-of date; comparison periods are as long as the range or a year earlier."""

from __future__ import annotations

from datetime import date

import pytest

from dashboard.ranges import DEFAULT_PRESET, PRESETS, DateRange, comparison_range, preset_range

pytestmark = pytest.mark.dashboard

AS_OF = date(2026, 3, 9)


@pytest.mark.parametrize(("preset", "start"), [
    ("last_7", date(2026, 3, 3)), ("last_28", date(2026, 2, 10)), ("last_90", date(2025, 12, 10)),
    ("month_to_date", date(2026, 3, 1)), ("year_to_date", date(2026, 1, 1)),
])
def test_presets_end_on_the_as_of_date_and_include_it(preset, start):
    rng = preset_range(preset, AS_OF)
    assert rng == DateRange(start, AS_OF)
    if preset.startswith("last_"):
        assert rng.days == int(preset.removeprefix("last_"))


def test_default_is_the_last_28_days_and_every_preset_has_a_label():
    assert DEFAULT_PRESET == "last_28" and set(PRESETS) >= {"last_7", "last_28", "last_90", "month_to_date",
                                                              "year_to_date", "custom"}


def test_custom_is_returned_as_given_and_needed():
    custom = DateRange(date(2025, 1, 5), date(2025, 2, 5))
    assert preset_range("custom", AS_OF, custom) is custom
    with pytest.raises(ValueError):
        preset_range("custom", AS_OF)
    with pytest.raises(ValueError):
        preset_range("last_week", AS_OF)
    with pytest.raises(ValueError):
        DateRange(date(2025, 2, 5), date(2025, 1, 5))


def test_previous_period_has_the_same_length_and_ends_the_day_before():
    assert comparison_range(DateRange(date(2026, 2, 10), AS_OF), "previous_period") == \
        DateRange(date(2026, 1, 13), date(2026, 2, 9))
    # month to date on 1 March: one day, compared with the day before (the last of February)
    assert comparison_range(DateRange(date(2024, 3, 1), date(2024, 3, 1)), "previous_period") == \
        DateRange(date(2024, 2, 29), date(2024, 2, 29))


def test_same_period_last_year_maps_29_february_to_28_february():
    assert comparison_range(DateRange(date(2024, 2, 1), date(2024, 2, 29)), "previous_year") == \
        DateRange(date(2023, 2, 1), date(2023, 2, 28))
    assert comparison_range(DateRange(date(2024, 2, 29), date(2024, 3, 6)), "previous_year") == \
        DateRange(date(2023, 2, 28), date(2023, 3, 6))
    assert comparison_range(DateRange(date(2026, 1, 1), AS_OF), "previous_year") == \
        DateRange(date(2025, 1, 1), date(2025, 3, 9))
    with pytest.raises(ValueError):
        comparison_range(DateRange(AS_OF, AS_OF), "previous_quarter")
