"""Early warning (未诉先办): spikes, seasonal onsets, forecasts and emerging issues.

Shared contract: :meth:`TrendDetector.fit` takes the appeal stream (``id``, ``time``,
``text``, optional ``district`` and ``category``); :meth:`TrendDetector.detect` answers
"as of the end of day D" using only appeals received up to D, and returns alerts whose
``score`` is higher when more anomalous, each with its evidence (series, window,
observed vs expected, appeal ids, one plain Chinese sentence).

* Series: daily counts per topic (``corpora/data/topics.csv``) and per category, each
  per district and city-wide.
* Expected volume: the larger of the trailing 28-day level and the same weeks in past
  years (364-day shift keeps weekdays aligned, volume-scaled), both adjusted for the
  weekday and Chinese public holidays with make-up workdays. Counts are tested with a
  negative binomial whose dispersion is estimated per series; the false-alarm rate over
  the many series tested each day is held by Benjamini–Hochberg.
* Seasonal onsets: a seasonal topic's 7-day count crossing three times its off-season
  level; the calendar holds every past onset, peak and end per topic × district, and
  forecasts the next onset from them.
* Emerging issues: words that were rare over the last 180 days and are now frequent,
  in appeals not explained by a seasonal topic.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from corpora.holidays import day_kind
from corpora.text import normalise, redact, tokenize
from corpora.topics import default_topics

__all__ = ["TrendDetector", "Series", "benjamini_hochberg", "onsets_in"]

_KIND_INDEX = {"workday": 0, "weekend": 1, "holiday": 2, "makeup": 0}
_DIGIT_RUN = re.compile(r"\d{5}")


@dataclass(frozen=True)
class Series:
    kind: str            # "topic" | "category"
    name: str
    district: str | None

    def label(self) -> str:
        return f"{self.district or '全市'}「{self.name}」"


def benjamini_hochberg(p: np.ndarray, q: float) -> np.ndarray:
    """Boolean mask of discoveries at false-discovery rate ``q``.

    Examples
    --------
    >>> benjamini_hochberg(np.array([0.001, 0.02, 0.04, 0.5]), 0.05).tolist()
    [True, True, False, False]
    """
    p = np.asarray(p, dtype=float)
    n = len(p)
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p)
    passed = p[order] <= q * np.arange(1, n + 1) / n
    k = np.nonzero(passed)[0]
    out = np.zeros(n, dtype=bool)
    if len(k):
        out[order[: k[-1] + 1]] = True
    return out


def onsets_in(rolling: np.ndarray, threshold: np.ndarray | float, *, min_run=5, gap_days=60):
    """Runs where a 7-day rolling count stays at or above ``threshold`` for ``min_run`` days.

    Returns (cross, peak, end) day indices per run; runs closer than ``gap_days`` merge.

    Examples
    --------
    >>> r = np.array([0, 1, 9, 10, 12, 11, 10, 9, 2, 1])
    >>> onsets_in(r, 8, min_run=3)
    [(2, 4, 7)]
    """
    above = np.asarray(rolling) >= threshold
    runs, i, n = [], 0, len(above)
    while i < n:
        if above[i]:
            j = i
            while j + 1 < n and above[j + 1]:
                j += 1
            if j - i + 1 >= min_run:
                if runs and i - runs[-1][2] < gap_days:
                    c, _, _ = runs[-1]
                    runs[-1] = (c, c, j)
                else:
                    runs.append((i, i, j))
            i = j + 1
        else:
            i += 1
    return [(c, c + int(np.argmax(rolling[c:e + 1])), e) for c, _, e in runs]


class TrendDetector(BaseEstimator):
    """Find spikes, seasonal onsets, due seasons and emerging issues as of a date.

    Parameters
    ----------
    window_days : int, default 3
        Length of the window tested for a spike.
    min_count : int, default 6
        Fewest appeals in a window for any alert.
    min_ratio : float, default 2.0
        Observed / expected needed for a spike.
    fdr : float, default 0.01
        Benjamini–Hochberg false-discovery rate across the series tested each day.
    forecast_weeks : int, default 6
        Horizon of seasonal-onset forecasts.
    emerging_min_docs : int, default 5
    emerging_min_ratio : float, default 5.0
    emerging_min_users : int, default 3
        Distinct senders needed (where the stream names them) for an emerging issue.

    Examples
    --------
    >>> from corpora.simulate import simulate_stream
    >>> f, truth = simulate_stream(start="2024-09-01", end="2024-12-31", seed=3)
    >>> det = TrendDetector().fit(f)
    >>> alerts = det.detect("2024-11-24", since_days=7)
    >>> any(a["kind"] in {"seasonal_onset", "spike"} and a["topic"] == "冬季采暖" for a in alerts)
    True
    """

    def __init__(self, *, window_days=3, min_count=6, min_ratio=2.0, fdr=0.01, forecast_weeks=6,
                 emerging_min_docs=5, emerging_min_ratio=5.0, emerging_min_users=3):
        self.window_days = window_days
        self.min_count = min_count
        self.min_ratio = min_ratio
        self.fdr = fdr
        self.forecast_weeks = forecast_weeks
        self.emerging_min_docs = emerging_min_docs
        self.emerging_min_ratio = emerging_min_ratio
        self.emerging_min_users = emerging_min_users

    # ------------------------------------------------------------------ fit
    def fit(self, frame: pd.DataFrame, y=None):
        """Index the stream: topics, series counts per day, words per appeal."""
        for col in ("id", "time", "text"):
            if col not in frame.columns:
                raise ValueError(f"the stream needs columns id, time and text; '{col}' is missing")
        f = frame[frame["time"].notna()].copy()
        if f.empty:
            raise ValueError("no appeals with a time: early warning needs timestamps")
        f["day"] = pd.to_datetime(f["time"]).dt.normalize()
        f = f.sort_values("day", kind="stable").reset_index(drop=True)
        self.day0_ = f["day"].iloc[0].date()
        n_days = (f["day"].iloc[-1].date() - self.day0_).days + 1
        day_idx = (f["day"] - pd.Timestamp(self.day0_)).dt.days.to_numpy()
        lex = default_topics()
        self.seasonal_topics_ = {t.name for t in lex.topics if t.seasonal}
        texts = [normalise(t) for t in f["text"].astype(str)]
        categories = f["category"].tolist() if "category" in f.columns else [None] * len(f)
        districts = [d if isinstance(d, str) and d else None for d in
                     (f["district"].tolist() if "district" in f.columns else [None] * len(f))]
        topics = [lex.assign(t) for t in texts]
        series_index: dict[Series, int] = {}
        rows, cols = [], []
        for i, (tops, cat, dist) in enumerate(zip(topics, categories, districts)):
            keys = [Series("topic", t, None) for t in tops]
            if isinstance(cat, str) and cat:
                keys.append(Series("category", cat, None))
            keys += [Series(k.kind, k.name, dist) for k in keys] if dist else []
            for k in keys:
                j = series_index.setdefault(k, len(series_index))
                rows.append(j)
                cols.append(i)
        self.series_ = list(series_index)
        member = sp.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)),
                               shape=(len(self.series_), len(f)))
        day_onehot = sp.csr_matrix((np.ones(len(f), dtype=np.int32), (np.arange(len(f)), day_idx)),
                                   shape=(len(f), n_days))
        self.counts_ = np.asarray((member @ day_onehot).todense(), dtype=np.float64)
        self.total_ = np.bincount(day_idx, minlength=n_days).astype(float)
        self.member_ = member
        self.ids_ = f["id"].astype(str).to_numpy()
        users = f["user"] if "user" in f.columns else pd.Series([None] * len(f))
        self.users_ = np.array([u if isinstance(u, str) and u else f"_{i}" for i, u in enumerate(users)], dtype=object)
        self.doc_day_ = day_idx
        self.kinds_ = np.array([_KIND_INDEX[day_kind(self.day0_ + timedelta(days=int(d)))] for d in range(n_days)])
        self.dow_ = np.array([(self.day0_ + timedelta(days=int(d))).weekday() for d in range(n_days)])
        # Words for emerging issues: appeals not explained by a seasonal topic.
        known = lex.terms() | {d for d in districts if d}
        explained = np.array([bool(set(t) & self.seasonal_topics_) for t in topics])
        known_long = [k for k in known if len(k) >= 2]
        usable: dict[str, bool] = {}  # per distinct word: not a number, a known term or a word containing one
        vocab: dict[str, int] = {}
        r2, c2 = [], []
        for i, t in enumerate(texts):
            if explained[i]:
                continue
            # Words are shown to people in alerts: personal data (a phone number many
            # people report, an ID number) is cut out before segmentation, and a word with
            # a long digit run that redaction did not recognise is never a term.
            for w in set(tokenize(redact(t, placeholder=" "))):
                ok = usable.get(w)
                if ok is None:
                    ok = usable[w] = (len(w) >= 2 and not w.isdigit() and w not in known
                                      and not _DIGIT_RUN.search(w)
                                      and not any(k in w for k in known_long))
                if ok:
                    r2.append(i)
                    c2.append(vocab.setdefault(w, len(vocab)))
        self.terms_ = np.array(list(vocab), dtype=object)
        self.doc_terms_ = sp.csr_matrix((np.ones(len(r2), dtype=np.int32), (r2, c2)), shape=(len(f), len(vocab)))
        term_day = (day_onehot.T @ self.doc_terms_).tocsr()  # days × terms
        self.term_cum_ = np.vstack([np.zeros((1, len(vocab)), dtype=np.int32),
                                    np.cumsum(term_day.toarray(), axis=0, dtype=np.int32)]) if len(vocab) else None
        return self

    # ------------------------------------------------------------- helpers
    def _day(self, d) -> int:
        return (date.fromisoformat(str(d)[:10]) - self.day0_).days

    def _date(self, i: int) -> str:
        return (self.day0_ + timedelta(days=int(i))).isoformat()

    def _day_factors(self, upto: int) -> np.ndarray:
        """Multiplicative factor per day (weekday × day kind), learned from days before ``upto``."""
        lo = max(0, upto - 365)
        tot = self.total_[lo:upto]
        mean = tot.mean() if len(tot) and tot.mean() > 0 else 1.0
        fac = np.ones(len(self.total_))
        for d in range(7):
            m = (self.dow_[lo:upto] == d) & (self.kinds_[lo:upto] == 0)
            if m.sum() >= 4:
                fac[(self.dow_ == d)] = tot[m].mean() / mean
        for k in (1, 2):
            m = self.kinds_[lo:upto] == k
            if m.sum() >= 4:
                fac[self.kinds_ == k] = tot[m].mean() / mean
        return np.clip(fac, 0.2, 3.0)

    def _evidence(self, series_idx: int, a: int, b: int, limit: int = 50) -> list[str]:
        docs = self.member_[series_idx].indices
        docs = docs[(self.doc_day_[docs] >= a) & (self.doc_day_[docs] <= b)]
        return self.ids_[np.sort(docs)[:limit]].tolist()

    def _expected(self, t: int, w: int, fac: np.ndarray):
        """Expected window counts for every series over days [t-w+1, t], and NB dispersions."""
        a = t - w + 1
        lo = max(0, a - 28)
        trail = self.counts_[:, lo:a]
        if trail.shape[1] == 0:
            return None, None
        norm_trail = trail / fac[lo:a]
        level = norm_trail.mean(axis=1)
        e_trail = level * fac[a:t + 1].sum()
        e = e_trail.copy()
        vol_now = self.total_[max(0, a - 90):a].mean() if a > 0 else 0
        years = []
        for k in (1, 2, 3):
            s, e_ = a - 364 * k - 7, t - 364 * k + 7
            if s < 0:
                break
            vol_then = self.total_[max(0, s - 90):s].mean() if s > 0 else 0
            scale = vol_now / vol_then if vol_then > 0 else 1.0
            years.append(self.counts_[:, s:e_ + 1].mean(axis=1) * w * scale)
        if years:
            e = np.maximum(e, np.mean(years, axis=0))
        e = np.maximum(e, 0.25 * w)
        hist = self.counts_[:, max(0, a - 56):a]
        mu, var = hist.mean(axis=1), hist.var(axis=1)
        k = np.where(var > mu + 1e-9, mu ** 2 / np.maximum(var - mu, 1e-9), 1e3)
        return e, np.clip(k, 0.5, 1e3)

    # --------------------------------------------------------------- detect
    def detect(self, as_of, *, since_days: int = 1) -> list[dict]:
        """Alerts as of the end of ``as_of`` using appeals up to then.

        ``since_days``: onsets and emerging issues first seen in the last ``since_days``
        days are reported (7 for a weekly run), so each is reported once.
        """
        check_is_fitted(self, "counts_")
        t = self._day(as_of)
        if t < 0:
            return []
        t = min(t, self.counts_.shape[1] - 1)
        alerts = self._spikes(t, since_days) + self._onsets(t, since_days) + self._emerging(t, since_days)
        alerts += self._forecasts(t)
        for a in alerts:
            a["as_of"] = self._date(t)
        return alerts

    def _spikes(self, t, since_days):
        """Windows of ``window_days`` ending on each of the last ``since_days`` days; per
        series the most significant one; Benjamini–Hochberg over everything tested."""
        w = self.window_days
        ends = [e for e in range(t - min(since_days, t + 1) + 1, t + 1) if e - w + 1 >= 28]
        if not ends:
            return []
        P, O, E = [], [], []
        for end in ends:
            fac = self._day_factors(end - w + 1)
            e, k = self._expected(end, w, fac)
            obs = self.counts_[:, end - w + 1:end + 1].sum(axis=1)
            n = k * w
            p = stats.nbinom.sf(obs - 1, n, n / (n + e))
            p = np.where((obs >= self.min_count) & (obs >= self.min_ratio * e), p, 1.0)
            P.append(p)
            O.append(obs)
            E.append(e)
        P, O, E = np.array(P), np.array(O), np.array(E)
        found = benjamini_hochberg(P.ravel(), self.fdr).reshape(P.shape) & (P < 1.0)
        out = []
        for j in np.nonzero(found.any(axis=0))[0]:
            i = int(np.argmin(np.where(found[:, j], P[:, j], 2.0)))
            end, s = ends[i], self.series_[j]
            obs, exp = O[i, j], E[i, j]
            out.append(self._alert("spike", s, j, end - w + 1, end, obs, exp, -np.log10(max(P[i, j], 1e-300)),
                                   f"{s.label()}{self._date(end - w + 1)}至{self._date(end)}收到{int(obs)}件诉求，"
                                   f"按历史同期、星期和节假日预计约{exp:.1f}件，明显偏高，请关注。"))
        return out

    def _thresholds(self, t):
        hist = self.counts_[:, max(0, t - 365):max(1, t - 7)]
        roll = _rolling7(hist)
        base = np.median(roll, axis=1) if roll.shape[1] else np.zeros(len(self.series_))
        return np.maximum(3 * base + 3 * np.sqrt(base), self.min_count + 2)

    def _onsets(self, t, since_days):
        out = []
        if t < 35:
            return out
        roll = _rolling7(self.counts_[:, max(0, t - 90):t + 1])
        thr = self._thresholds(t)
        for j, s in enumerate(self.series_):
            if s.kind != "topic" or s.name not in self.seasonal_topics_:
                continue
            r = roll[j]
            above = r >= thr[j]
            for back in range(min(since_days, len(r) - 1)):
                i = len(r) - 1 - back
                if above[i] and not above[max(0, i - 60):i].any():
                    cross = t - back
                    start = cross - 6
                    obs = self.counts_[j, start:cross + 1].sum()
                    out.append(self._alert(
                        "seasonal_onset", s, j, start, cross, obs, thr[j], float(obs / max(thr[j], 1)),
                        f"{s.label()}诉求开始进入季节性上升期：近7天{int(obs)}件，超过淡季水平"
                        f"（阈值{thr[j]:.0f}件），请提前部署。"))
                    break
        return out

    def calendar(self, as_of=None, *, weeks=None) -> dict:
        """Past onsets, peaks and ends per seasonal topic × district, typical dates, what is due."""
        t = self.counts_.shape[1] - 1 if as_of is None else min(self._day(as_of), self.counts_.shape[1] - 1)
        weeks = self.forecast_weeks if weeks is None else weeks
        roll = _rolling7(self.counts_[:, : t + 1])
        base = np.median(roll, axis=1) if roll.shape[1] else np.zeros(len(self.series_))
        thr = np.maximum(3 * base + 3 * np.sqrt(base), self.min_count + 2)
        entries = []
        for j, s in enumerate(self.series_):
            if s.kind != "topic" or s.name not in self.seasonal_topics_:
                continue
            # An onset needs 45 quiet days of data before it: a season already under way
            # when the data start, or a dip and rise inside it, is not an onset.
            runs = [r for r in onsets_in(roll[j], thr[j]) if r[0] >= 45 and (roll[j][r[0] - 45:r[0] - 7] < thr[j]).all()]
            if not runs:
                continue
            daily_base = base[j] / 7
            seasons = []
            for c, p, e in runs:
                onset = self._onset_day(j, c, daily_base)
                seasons.append({"onset": self._date(onset), "peak": self._date(p), "end": self._date(e),
                                "peak_7day_count": int(roll[j][p]), "_onset_idx": onset})
            doy = np.array([_season_day(date.fromisoformat(x["onset"])) for x in seasons])
            peak_doy = np.array([_season_day(date.fromisoformat(x["peak"])) for x in seasons])
            length = np.array([(date.fromisoformat(x["end"]) - date.fromisoformat(x["onset"])).days for x in seasons])
            typical = int(np.median(doy))
            entry = {"topic": redact(s.name), "district": redact(s.district) if s.district else None,
                     "n_seasons": len(seasons),
                     "typical_onset": _from_season_day(typical), "onset_spread_days": round(float(np.std(doy)), 1),
                     "typical_peak": _from_season_day(int(np.median(peak_doy))),
                     "typical_length_days": int(np.median(length)),
                     "seasons": [{k: v for k, v in x.items() if not k.startswith("_")} for x in seasons],
                     "_series": j, "_typical": typical, "_runs": seasons}
            nxt = _next_occurrence(self.day0_ + timedelta(days=t), typical)
            entry["next_onset"] = nxt.isoformat()
            entry["due_within_weeks"] = (nxt - (self.day0_ + timedelta(days=t))).days <= 7 * weeks
            entries.append(entry)
        return {"as_of": self._date(t), "horizon_weeks": weeks, "entries": entries}

    def _onset_day(self, j, cross, daily_base) -> int:
        """Walk back from the day the 7-day count crossed its threshold to the first day of
        the rise: the earliest day in the week before with a count above the off-season level."""
        level = daily_base + 2 * np.sqrt(daily_base) + 1
        week = self.counts_[j, max(0, cross - 6):cross + 1]
        above = np.nonzero(week >= level)[0]
        return max(0, cross - 6) + int(above[0]) if len(above) else cross

    def _forecasts(self, t):
        if t < 300:
            return []
        today = self.day0_ + timedelta(days=t)
        thresholds = self._thresholds(t)
        out = []
        for entry in self.calendar(self._date(t))["entries"]:
            j = entry["_series"]
            # Only seasons that ended before today count as history for the forecast.
            past = [r for r in entry["_runs"] if date.fromisoformat(r["end"]) < today - timedelta(days=7)]
            if not past:
                continue
            doy = int(np.median([_season_day(date.fromisoformat(r["onset"])) for r in past]))
            nxt = _next_occurrence(today, doy)
            if not (today < nxt <= today + timedelta(weeks=self.forecast_weeks)):
                continue
            recent = self.counts_[j, max(0, t - 20):t + 1].sum()
            if recent >= thresholds[j]:
                continue  # already in season
            last = past[-1]
            ev = self._evidence(j, last["_onset_idx"], last["_onset_idx"] + 13, limit=20)
            s = self.series_[j]
            spread = float(np.std([_season_day(date.fromisoformat(r["onset"])) for r in past]))
            a = self._alert("forecast", s, j, None, None, int(recent), float(last["peak_7day_count"]),
                            float(len(past)),
                            f"{s.label()}预计{nxt.month}月{nxt.day}日前后进入季节性高发期（往年{len(past)}个季度，"
                            f"波动约±{spread:.0f}天），建议提前准备。")
            a["window_start"] = nxt.isoformat()
            a["window_end"] = (nxt + timedelta(days=entry["typical_length_days"])).isoformat()
            a["evidence_ids"] = ev
            out.append(a)
        return out

    def _emerging(self, t, since_days):
        if self.term_cum_ is None or t < 120:
            return []
        C = self.term_cum_
        recent_days, hist_days = 14, 180
        docs_cum = np.concatenate([[0], np.cumsum(self.total_)])

        def window(end, length):  # (term doc counts, appeals) in the `length` days ending at day `end`
            a, b = max(0, end + 1 - length), max(0, end + 1)
            return C[b] - C[a], docs_cum[b] - docs_cum[a]

        def expected(end):
            r, n_r = window(end, recent_days)
            h, n_h = window(end - recent_days, hist_days)
            # A term's share of appeals in the past half-year, applied to the recent volume.
            return r, (h + 0.5) / (n_h + 1.0) * n_r, n_h

        r, rate0, n_hist = expected(t)
        if n_hist < 200:
            return []  # too little history to call anything new
        cand = (r >= self.emerging_min_docs) & (r >= self.emerging_min_ratio * rate0)
        if not cand.any():
            return []
        idx = np.nonzero(cand)[0]
        p = stats.poisson.sf(r[idx] - 1, rate0[idx])
        keep = idx[benjamini_hochberg(p, self.fdr)]
        # Report once: the term crosses now, not already at the previous run.
        r_prev, rate_prev, _ = expected(t - since_days)
        keep = [k for k in keep if not (r_prev[k] >= self.emerging_min_docs
                                        and r_prev[k] >= self.emerging_min_ratio * rate_prev[k])]
        if not keep:
            return []
        in_window = np.nonzero((self.doc_day_ > t - recent_days) & (self.doc_day_ <= t))[0]
        D = self.doc_terms_[in_window][:, keep].tocsc()
        docsets = [set(in_window[D[:, i].indices]) for i in range(len(keep))]
        clusters: list[list[int]] = []
        for i in np.argsort(-r[keep]):
            for c in clusters:
                rep = docsets[c[0]]
                if len(docsets[i] & rep) >= 0.3 * min(len(docsets[i]), len(rep)):
                    c.append(i)
                    break
            else:
                clusters.append([i])
        out = []
        for c in clusters:
            terms = [str(self.terms_[keep[i]]) for i in c[:3]]
            docs = sorted(set().union(*(docsets[i] for i in c)))
            if len(set(self.users_[docs])) < self.emerging_min_users:
                continue  # one or two people posting again and again is not a new issue
            lead = keep[c[0]]
            obs, exp = int(r[lead]), float(rate0[lead])
            out.append({"kind": "emerging", "topic": redact("新问题：" + "、".join(terms)), "category": None,
                        "district": None, "window_start": self._date(t - recent_days + 1),
                        "window_end": self._date(t), "observed": obs, "expected": round(exp, 2),
                        "score": round(float(-np.log10(max(stats.poisson.sf(obs - 1, exp), 1e-300))), 2),
                        "evidence_ids": self.ids_[docs[:50]].tolist(),
                        "summary": redact(f"近两周出现新的诉求热点「{'、'.join(terms)}」：{obs}件，"
                                          f"按此前半年的占比预计约{exp:.1f}件，且不属于已知季节性问题，请研判。")})
        return out

    def _alert(self, kind, s: Series, j, a, b, obs, exp, score, summary):
        # Every human-facing field is redacted: category and district come from the data.
        return {"kind": kind, "topic": redact(s.name) if s.kind == "topic" else None,
                "category": redact(s.name) if s.kind == "category" else None,
                "district": redact(s.district) if s.district else None,
                "window_start": self._date(a) if a is not None else None,
                "window_end": self._date(b) if b is not None else None,
                "observed": int(obs), "expected": round(float(exp), 2), "score": round(float(score), 2),
                "evidence_ids": self._evidence(j, a, b) if a is not None else [],
                "summary": redact(summary)}


def _rolling7(counts: np.ndarray) -> np.ndarray:
    if counts.shape[1] == 0:
        return counts
    c = np.cumsum(np.pad(counts, ((0, 0), (1, 0))), axis=1)
    out = c[:, 1:] - c[:, np.maximum(0, np.arange(1, counts.shape[1] + 1) - 7)]
    return out


def _season_day(d: date) -> int:
    """Days since 1 July, so a winter season (Nov–Mar) is not split by New Year."""
    start = date(d.year if d.month >= 7 else d.year - 1, 7, 1)
    return (d - start).days


def _from_season_day(n: int) -> str:
    d = date(2001, 7, 1) + timedelta(days=int(n))
    return f"{d.month:02d}-{d.day:02d}"


def _next_occurrence(today: date, season_day: int) -> date:
    for year in (today.year - 1, today.year, today.year + 1):
        d = date(year, 7, 1) + timedelta(days=season_day)
        if d > today:
            return d
    return date(today.year + 1, 7, 1) + timedelta(days=season_day)
