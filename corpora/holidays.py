"""Chinese public holidays with make-up workdays (``chinesecalendar``), safe outside its range."""
from __future__ import annotations

import logging
from datetime import date
from functools import lru_cache

log = logging.getLogger(__name__)

__all__ = ["day_kind", "holiday_name"]


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
