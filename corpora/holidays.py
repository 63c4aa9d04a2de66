"""Chinese public holidays with make-up workdays (``chinesecalendar``), safe outside its range."""
from __future__ import annotations

import logging
from datetime import date
from functools import lru_cache

log = logging.getLogger(__name__)

__all__ = ["day_kind", "holiday_name", "holiday_starts"]


@lru_cache(maxsize=8192)
def _detail(d: date):
    import chinese_calendar

    try:
        return chinese_calendar.get_holiday_detail(d)
    except NotImplementedError:  # outside the years the package knows: weekends only
        return d.weekday() >= 5, None


def day_kind(d: date) -> str:
    """'holiday' (statutory holiday), 'makeup' (a weekend made a workday), 'weekend' or 'workday'.

    Examples
    --------
    >>> day_kind(date(2025, 10, 3)), day_kind(date(2025, 9, 28)), day_kind(date(2025, 10, 12))
    ('holiday', 'makeup', 'weekend')
    """
    off, name = _detail(d)
    if off and name:
        return "holiday"
    if not off and d.weekday() >= 5:
        return "makeup"
    return "weekend" if off else "workday"


def holiday_name(d: date) -> str | None:
    off, name = _detail(d)
    return name if off else None


_ZH = {"New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明节", "Labour Day": "劳动节",
       "Dragon Boat Festival": "端午节", "Mid-autumn Festival": "中秋节", "National Day": "国庆节"}


@lru_cache(maxsize=1)
def holiday_starts() -> dict[str, tuple[date, ...]]:
    """First day of each statutory holiday, per holiday (Chinese name), every year
    ``chinesecalendar`` knows — the anchors of holiday-driven seasons (Spring Festival
    moves by weeks from year to year).

    Examples
    --------
    >>> [d.isoformat() for d in holiday_starts()["春节"] if d.year in (2024, 2025)]
    ['2024-02-10', '2025-01-28']
    """
    import chinese_calendar

    first: dict[tuple[int, str], date] = {}
    for d, name in chinese_calendar.holidays.items():
        if isinstance(name, str) and name in _ZH:
            key = (d.year if not (name == "New Year's Day" and d.month == 12) else d.year + 1, _ZH[name])
            first[key] = min(first.get(key, d), d)
    out: dict[str, list[date]] = {}
    for (_, zh), d in sorted(first.items(), key=lambda kv: kv[1]):
        out.setdefault(zh, []).append(d)
    return {k: tuple(v) for k, v in out.items()}
