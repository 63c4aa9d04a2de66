"""corpora/holidays.py: Chinese public holidays and make-up workdays (chinesecalendar)."""
from datetime import date

import pytest

from corpora.holidays import day_kind, holiday_name, holiday_starts


@pytest.mark.parametrize("d, kind", [
    (date(2025, 10, 3), "holiday"),    # National Day, a Friday
    (date(2025, 10, 4), "holiday"),    # National Day, a Saturday: a holiday, not a weekend
    (date(2025, 9, 28), "makeup"),     # a Sunday worked to make up for Golden Week
    (date(2025, 10, 11), "makeup"),    # ... and a Saturday
    (date(2150, 1, 3), "weekend"),     # a Saturday past the package's years
    (date(2025, 10, 12), "weekend"),
    (date(2025, 10, 13), "workday"),
    (date(2150, 1, 1), "workday"),     # past the package's years: a Wednesday is a workday ...
    (date(2150, 1, 4), "weekend"),     # ... and a Sunday a weekend
])
def test_day_kind(d, kind):
    assert day_kind(d) == kind


@pytest.mark.parametrize("d, name", [
    (date(2025, 10, 3), "National Day"),
    (date(2023, 12, 30), "New Year's Day"),
    (date(2025, 9, 28), None),          # make-up workday: no holiday
    (date(2025, 10, 12), None),         # ordinary weekend
    (date(2025, 10, 13), None),
    (date(2150, 1, 1), None),
])
def test_holiday_name(d, name):
    assert holiday_name(d) == name


def test_holiday_starts_are_the_first_day_of_each_holiday():
    starts = holiday_starts()
    assert set(starts) == {"元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节"}
    in_range = {k: [d.isoformat() for d in v if date(2022, 12, 1) <= d <= date(2025, 12, 31)]
                for k, v in starts.items()}
    # New Year starting on 31 December belongs to the year that begins
    assert in_range["元旦"] == ["2022-12-31", "2023-12-30", "2025-01-01"]
    assert in_range["春节"] == ["2023-01-21", "2024-02-10", "2025-01-28"]
    assert in_range["国庆节"] == ["2023-09-30", "2024-10-01", "2025-10-01"]
    for name, days in starts.items():  # one start per holiday and year, in date order
        years = [d.year + (d.month == 12) for d in days] if name == "元旦" else [d.year for d in days]
        assert list(days) == sorted(days) and len(set(years)) == len(days)
