"""A textbook detector to compare early warning with: a count GLM per series (statsmodels).

Farrington-style surveillance as public-health agencies run it, simplified to daily
series: per series, a quasi-Poisson GLM with a log link on the trailing year — trend,
weekday, statutory holiday and make-up workday, and one annual harmonic — refitted every
``refit_days``; the last ``guard_days`` before a fit are left out so an outbreak under way
does not raise its own baseline. A window of ``window_days`` alarms when its count is at
least ``min_count`` and above the upper prediction bound at the level that spends the
same weekly false-alarm budget as :class:`models.trends.TrendDetector` (Bonferroni over
the series and days tested). The model is statsmodels'; only the design and the alarm
rule are written here. Series are the detector's own (topic and category, per district
and city-wide), so both are judged on the same counts.
"""
from __future__ import annotations

import logging
import warnings
from datetime import timedelta

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from models.trends import TrendDetector
from training.trends import as_of_dates

log = logging.getLogger(__name__)

__all__ = ["glm_backtest"]


def _design(det: TrendDetector, days: np.ndarray) -> np.ndarray:
    doy = np.array([(det.day0_ + timedelta(days=int(d))).timetuple().tm_yday for d in days])
    cols = [np.ones(len(days)), days / 365.0]
    cols += [(det.dow_[days] == k).astype(float) for k in range(1, 7)]
    cols += [(det.kinds_[days] == 2).astype(float)]  # statutory holiday (make-up days count as workdays)
    cols += [np.sin(2 * np.pi * doy / 365.25), np.cos(2 * np.pi * doy / 365.25)]
    return np.column_stack(cols)


def glm_backtest(frame: pd.DataFrame, start, end, *, every: int = 7, window_days: int = 3, min_count: int = 6,
                 false_alarms_per_week: float = 0.2, refit_days: int = 28, history_days: int = 365,
                 guard_days: int = 7, progress: bool = True) -> list[dict]:
    """Alerts (kind ``spike``) as of each date in ``as_of_dates(start, end, every)``, with the
    fields of :meth:`TrendDetector.detect`; a series' repeat within 7 days is not repeated."""
    import statsmodels.api as sm

    det = TrendDetector(window_days=window_days).fit(frame)
    n_series, n_days = det.counts_.shape
    dates = [d for d in as_of_dates(start, end, every) if det._day(d) >= 90]
    alpha = false_alarms_per_week * every / 7 / max(n_series * min(every, 7), 1)
    z_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # series -> (coef, phi) at the last fit
    fitted_at = -10 ** 9
    out, last = [], {}
    for d in tqdm(dates, desc="glm backtest", unit="day", disable=not progress):
        t = min(det._day(d), n_days - 1)
        if t - fitted_at >= refit_days:
            fitted_at, z_cache = t, {}
            hist = np.arange(max(0, t - guard_days - history_days), t - guard_days)
            X = _design(det, hist)
            for j in range(n_series):
                y = det.counts_[j, hist]
                if y.sum() < 10:
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        res = sm.GLM(y, X, family=sm.families.Poisson()).fit(scale="X2")
                    except (ValueError, np.linalg.LinAlgError):  # a degenerate series (e.g. separation)
                        continue
                z_cache[j] = (res.params, max(float(res.scale), 1.0))
        ends = [e for e in range(t - min(every, t + 1) + 1, t + 1) if e - window_days + 1 >= 0]
        for j, (coef, phi) in z_cache.items():
            best = None
            for e in ends:
                days = np.arange(e - window_days + 1, e + 1)
                mu = float(np.exp(_design(det, days) @ coef).sum())
                obs = det.counts_[j, days].sum()
                if obs < min_count:
                    continue
                # quasi-Poisson as a negative binomial with variance phi * mu
                p = stats.nbinom.sf(obs - 1, mu / max(phi - 1, 1e-6), 1 / phi) if phi > 1.0001 \
                    else stats.poisson.sf(obs - 1, mu)
                if p <= alpha and (best is None or p < best[0]):
                    best = (p, e, obs, mu)
            if best is None:
                continue
            p, e, obs, mu = best
            key = det.series_[j]
            if key in last and (d - last[key]).days < 7:
                continue
            last[key] = d
            a = det._alert("spike", key, j, e - window_days + 1, e, obs, mu, -np.log10(max(p, 1e-300)), "glm")
            a["as_of"] = det._date(t)
            out.append(a)
    return out
