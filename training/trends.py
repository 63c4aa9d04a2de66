"""Backtests of early warning: replay a stream as of each date, score against truth."""
from __future__ import annotations

import logging
from datetime import date, timedelta

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from models.trends import TrendDetector

log = logging.getLogger(__name__)

__all__ = ["backtest", "baseline_backtest", "score_alerts", "as_of_dates"]


def as_of_dates(start, end, every: int) -> list[date]:
    """Every Sunday in [start, end] by default (``every=7``), else every ``every`` days."""
    d0, d1 = date.fromisoformat(str(start)), date.fromisoformat(str(end))
    if d1 < d0:
        raise ValueError(f"--end {d1} is before --start {d0}")
    if every == 7:
        d0 = d0 + timedelta(days=(6 - d0.weekday()) % 7)
    return [d0 + timedelta(days=i) for i in range(0, (d1 - d0).days + 1, every)]


def backtest(frame: pd.DataFrame, start, end, *, every: int = 7, detector: TrendDetector | None = None,
             progress=True) -> list[dict]:
    """Alerts as of each date, using only appeals up to that date; a series' repeat alert
    of the same kind within 7 days (or the same forecast) is not repeated."""
    det = (detector or TrendDetector()).fit(frame)
    out, last = [], {}
    for d in tqdm(as_of_dates(start, end, every), desc="backtest", unit="day", disable=not progress):
        for a in det.detect(d, since_days=every):
            key = (a["kind"], a["topic"], a["category"], a["district"],
                   a["window_start"] if a["kind"] == "forecast" else None)
            prev = last.get(key)
            if prev is not None and (d - prev).days < 7:
                continue
            last[key] = d
            out.append(a)
    return out


def baseline_backtest(frame: pd.DataFrame, start, end, *, every: int = 7) -> list[dict]:
    """The simple baseline: a series' last-7-day count above its trailing 8-week mean + 3 s.d."""
    det = TrendDetector().fit(frame)
    out = []
    for d in as_of_dates(start, end, every):
        t = min(det._day(d), det.counts_.shape[1] - 1)
        if t < 63:
            continue
        weeks = np.stack([det.counts_[:, t - 7 * (k + 1) + 1:t - 7 * k + 1].sum(axis=1) for k in range(9)], axis=1)
        now, hist = weeks[:, 0], weeks[:, 1:]
        thr = hist.mean(axis=1) + 3 * hist.std(axis=1)
        for j in np.nonzero((now > thr) & (now >= 5))[0]:
            s = det.series_[j]
            out.append({**det._alert("spike", s, j, t - 6, t, now[j], hist[j].mean(), float(now[j] / max(thr[j], 1)),
                                     "baseline"), "as_of": det._date(t)})
    return out


def score_alerts(alerts: list[dict], truth: list[dict], *, start, weeks: float, max_delay_days: int = 7,
                 end=None) -> dict:
    """Event recall, alert precision, detection delay and onset-forecast error vs the truth.

    Scored events are those whose detection window lies inside the backtest: starting at
    least 35 days after ``start`` (a baseline to compare with) and, when ``end`` (the
    backtest's last day) is given, at least ``max_delay_days`` before it (a stream that
    stops a day after an event starts cannot show it to any detector)."""
    d_start = date.fromisoformat(str(start))
    last = date.fromisoformat(str(end)) - timedelta(days=max_delay_days) if end is not None else date.max
    events = [e for e in truth if d_start + timedelta(days=35) <= date.fromisoformat(e["start"]) <= last]
    ids = {e["id"]: set(e["ids"]) for e in truth}
    owner = {i: e["id"] for e in truth for i in e["ids"]}
    detections = [a for a in alerts if a["kind"] != "forecast"]
    delays, caught = [], {}
    for e in events:
        s = date.fromisoformat(e["start"])
        hits = [a for a in detections
                if 0 <= (date.fromisoformat(a["as_of"]) - s).days <= max_delay_days and set(a["evidence_ids"]) & ids[e["id"]]]
        caught[e["id"]] = bool(hits)
        if hits:
            delays.append(min((date.fromisoformat(a["as_of"]) - s).days for a in hits))
    recalled = sum(caught.values())
    true_alerts = sum(1 for a in detections if any(i in owner for i in a["evidence_ids"]))
    errors, moves, by_season, reference = [], [], {}, {}
    for e in events:
        if e["kind"] != "seasonal_onset":
            continue
        s = date.fromisoformat(e["start"])
        # forecasts made 3-5 weeks ahead for this topic and district and about this season
        # (a topic can have several seasons a year): the latest one counts
        fc = [a for a in alerts if a["kind"] == "forecast" and a["topic"] == e["topic"] and a["district"] == e["district"]
              and 21 <= (s - date.fromisoformat(a["as_of"])).days <= 35
              and abs((date.fromisoformat(a["window_start"]) - s).days) <= 45]
        if fc:
            errors.append(abs((date.fromisoformat(fc[-1]["window_start"]) - s).days))
            moves.append(_season_move(e, truth))
            by_season.setdefault(e.get("season") or e["topic"], []).append(errors[-1])
            ref = _reference_error(e, truth)
            if ref is not None:
                reference.setdefault(e.get("season") or e["topic"], []).append(ref)
    # the day (after its start) each emerging issue was first alerted with its appeals, at any delay
    emerging_days = []
    for e in events:
        if e["kind"] == "emerging":
            s = date.fromisoformat(e["start"])
            days = [(date.fromisoformat(a["as_of"]) - s).days for a in detections if set(a["evidence_ids"]) & ids[e["id"]]]
            emerging_days.append(min((d for d in days if d >= 0), default=None))
    by_kind = {k: {"events": sum(1 for e in events if e["kind"] == k),
                   "recalled": sum(1 for e in events if e["kind"] == k and caught[e["id"]])}
               for k in ("spike", "seasonal_onset", "emerging")}
    return {
        "events": len(events), "event_recall": round(recalled / len(events), 3) if events else None,
        "recall_by_kind": by_kind,
        "alerts": len(detections), "alert_precision": round(true_alerts / len(detections), 3) if detections else None,
        "median_delay_days": float(np.median(delays)) if delays else None,
        "alerts_per_week": round(len(detections) / weeks, 2),
        "false_alarms_per_week": round((len(detections) - true_alerts) / weeks, 2),
        "emerging_first_alert_days": emerging_days,
        "onset_forecasts_scored": len(errors),
        # recurring seasons (one seen in an earlier year) that got no forecast 3-5 weeks ahead
        "onset_forecasts_missing": sum(1 for e in events if e["kind"] == "seasonal_onset"
                                       and date.fromisoformat(e["start"]) >= d_start + timedelta(days=365)) - len(errors),
        "onset_forecast_error_days": {"median": float(np.median(errors)), "mean": round(float(np.mean(errors)), 1),
                                      "max": int(max(errors))}
        if errors else None,
        # how far each forecast season itself moved from its previous year (days, on its
        # anchor's scale): one past season cannot foresee that move, so the worst error is
        # also given over the seasons that moved no more than 7 days
        # the worst error per season (heating, plum rain, typhoon, each holiday's tourism …)
        "onset_forecast_error_days_max_by_season": {k: max(v) for k, v in sorted(by_season.items())},
        # the same, for a forecast at the median of last year's true onsets (see _reference_error)
        "onset_reference_error_days_max_by_season": {k: max(v) for k, v in sorted(reference.items())},
        "onset_season_moves_over_7_days": sum(1 for m in moves if m is not None and m > 7),
        "onset_forecast_error_days_max_where_moved_le_7": max(
            (x for x, m in zip(errors, moves) if m is not None and m <= 7), default=None),
    }


def _season_move(event: dict, truth: list[dict]) -> int | None:
    """Days the onset of ``event``'s season moved since the same season's previous onset in
    the truth (same topic, district and ``season``): on the calendar, or from the season's
    anchor holiday when it has one (the Spring Festival itself moves by weeks). None
    without a previous onset.

    >>> e = lambda y, m, d: {"kind": "seasonal_onset", "topic": "t", "district": "d", "season": "s",
    ...                      "anchor": None, "start": date(y, m, d).isoformat()}
    >>> _season_move(e(2024, 6, 9), [e(2023, 6, 19), e(2024, 6, 9)])
    10
    >>> _season_move(e(2023, 6, 19), [e(2023, 6, 19)]) is None
    True
    >>> _season_move(e(2025, 1, 3), [e(2023, 12, 28), e(2025, 1, 3)])
    6
    """
    s = date.fromisoformat(event["start"])
    same = _earlier_onsets(event, truth, same_district=True)
    if not same:
        return None
    return _days_apart(_position(s, event.get("anchor")), _position(max(same), event.get("anchor")), event)


def _reference_error(event: dict, truth: list[dict]) -> int | None:
    """The error of a forecast put at the median of the season's true onsets, over every
    district, in its latest earlier year: what this project's calendar would forecast
    with one earlier season seen (pooled over the city) and its onsets found without lag.
    A reference read from the truth, never given to the detector: how far the simulated
    season moves from one year to the next, whatever the forecaster. None without an
    earlier year.

    >>> e = lambda y, m, d, k="d": {"kind": "seasonal_onset", "topic": "t", "district": k, "season": "s",
    ...                             "anchor": None, "start": date(y, m, d).isoformat()}
    >>> _reference_error(e(2024, 6, 9), [e(2023, 6, 19), e(2023, 6, 15, "e"), e(2023, 6, 11, "f"), e(2024, 6, 9)])
    6
    """
    earlier = _earlier_onsets(event, truth, same_district=False)
    if not earlier:
        return None
    latest = max(earlier)
    anchor = event.get("anchor")
    year = [_position(d, anchor) for d in earlier if (latest - d).days <= 120]
    return _days_apart(_position(date.fromisoformat(event["start"]), anchor), int(round(float(np.median(year)))),
                       event)


def _earlier_onsets(event: dict, truth: list[dict], *, same_district: bool) -> list[date]:
    """The starts of the same season (topic and ``season``; and district) at least 200 days before ``event``."""
    s = date.fromisoformat(event["start"])
    return [date.fromisoformat(x["start"]) for x in truth if x["kind"] == "seasonal_onset"
            and (x["topic"], x.get("season")) == (event["topic"], event.get("season"))
            and (not same_district or x["district"] == event["district"])
            and date.fromisoformat(x["start"]) <= s - timedelta(days=200)]


def _position(d: date, anchor: str | None) -> int:
    """A day's place in its season's year: days from the anchor holiday when there is one
    (the Spring Festival moves by weeks), else the day of the (non-leap) year."""
    if anchor:
        from corpora.simulate import holiday_run
        starts = [r[0] for r in (holiday_run(y, anchor) for y in (d.year - 1, d.year, d.year + 1)) if r]
        if starts:
            return min(((d - h).days for h in starts), key=abs)
    return d.timetuple().tm_yday - (1 if d.year % 4 == 0 and d.month > 2 else 0)


def _days_apart(a: int, b: int, event: dict) -> int:
    moved = abs(a - b)
    return min(moved, 365 - moved) if not event.get("anchor") else moved  # late December to early January: days, not a year
