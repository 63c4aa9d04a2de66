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
  negative binomial whose dispersion is estimated per series around its local level.
* One false-alarm budget per week (``false_alarms_per_week``) is spread over every test
  made — each series and window, each word screened for an emerging issue.
* Seasonal onsets: a seasonal topic's 7-day count crossing three times its off-season
  level; the calendar holds every past onset, peak and end per topic × district, groups
  them into recurring seasons (several a year per topic), anchors each to a calendar date
  or a public holiday, and forecasts the next onset from them.
* Emerging issues: words that were rare over the last 180 days and are now frequent,
  in appeals not explained by a seasonal topic, counted and tested by distinct sources
  (senders, or texts with re-posts merged).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from scipy.ndimage import median_filter
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from corpora.dedup import near_duplicate_groups
from corpora.holidays import day_kind, holiday_starts
from corpora.text import normalise, redact, tokenize
from corpora.topics import default_topics
from models.hotspots import HotspotGrouper, describe

__all__ = ["TrendDetector", "Series", "TextMemo", "onsets_in"]

_KIND_INDEX = {"workday": 0, "weekend": 1, "holiday": 2, "makeup": 0}
_DIGIT_RUN = re.compile(r"\d{5}")
QUIET_DAYS = 14  # days below the threshold that separate two seasons of one topic
ONSET_SEARCH_DAYS, ONSET_MAX_BACK = 20, 13  # a season's first day: searched for in the 20 days before its crossing
EMERGING_LOOKBACK_DAYS = 14 + 180  # an emerging-issue test reads words of the last 14 days and the 180 before


@dataclass(frozen=True)
class Series:
    kind: str            # "topic" | "category"
    name: str
    district: str | None

    def label(self) -> str:
        return f"{self.district or '全市'}「{self.name}」"


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
    false_alarms_per_week : float, default 0.2
        The false-alarm budget: spikes and emerging issues are tested at a level that
        keeps the expected number of false alarms per week, over every series, window
        and group tested, at most this (:meth:`alpha`).
    forecast_weeks : int, default 6
        Horizon of seasonal-onset forecasts.
    emerging_min_docs : int, default 4
        Fewest appeals holding a word in the last 14 days for it to be screened.
    emerging_min_ratio : float, default 5.0
        Least ratio of a word's recent share of appeals to its share in the half-year before.
    emerging_min_users : int, default 3
        Distinct sources an emerging issue needs: senders where the stream names them,
        else texts (near-duplicates count once).

    Examples
    --------
    >>> from corpora.simulate import simulate_stream
    >>> f, truth = simulate_stream(start="2024-09-01", end="2024-12-31", seed=3)
    >>> det = TrendDetector().fit(f)
    >>> alerts = det.detect("2024-11-24", since_days=7)
    >>> any(a["kind"] in {"seasonal_onset", "spike"} and a["topic"] == "冬季采暖" for a in alerts)
    True
    """

    def __init__(self, *, window_days=3, min_count=6, min_ratio=2.0, false_alarms_per_week=0.2, forecast_weeks=6,
                 emerging_min_docs=4, emerging_min_ratio=5.0, emerging_min_users=3):
        self.window_days = window_days
        self.min_count = min_count
        self.min_ratio = min_ratio
        self.false_alarms_per_week = false_alarms_per_week
        self.forecast_weeks = forecast_weeks
        self.emerging_min_docs = emerging_min_docs
        self.emerging_min_ratio = emerging_min_ratio
        self.emerging_min_users = emerging_min_users

    # ------------------------------------------------------------------ fit
    def fit(self, frame: pd.DataFrame, y=None, *, terms_since=None, memo: TextMemo | None = None):
        """Index the stream: topics, series counts per day, words per appeal.

        Per-text work (normalising, topics, segmenting) is done once per distinct text:
        appeals repeat (re-posts, templates), and each is indexed exactly as if read alone.

        Parameters
        ----------
        frame : DataFrame
            ``id, time, text`` and, where known, ``district, category, user``.
        terms_since : date or str, optional
            Segment into words (for emerging issues) only appeals received on or after
            this day. Counts, seasons and calendar are unchanged; :meth:`detect` then
            answers only as-of dates whose emerging-issue look-back
            (:data:`EMERGING_LOOKBACK_DAYS` plus ``since_days``) starts on or after it,
            and raises ``ValueError`` for earlier ones. A weekly digest needs words of
            its last ~200 days only, not of the years of history behind its counts.
        memo : TextMemo, optional
            The per-text work of earlier fits (:class:`TextMemo`): texts it holds are not
            processed again, and those processed here are added to it. The fit is the
            same with or without it.
        """
        for col in ("id", "time", "text"):
            if col not in frame.columns:
                raise ValueError(f"the stream needs columns id, time and text; '{col}' is missing")
        if terms_since is not None:
            try:
                terms_since = date.fromisoformat(str(terms_since)[:10])
            except ValueError:
                raise ValueError(f"terms_since must be a date (YYYY-MM-DD) or None, got {str(terms_since)[:30]!r}") from None
        memo = TextMemo() if memo is None else memo
        cols = [c for c in ("id", "time", "text", "district", "category", "user") if c in frame.columns]
        f = frame.loc[frame["time"].notna(), cols]  # a new frame (copy-on-write: the caller's is not changed)
        if f.empty:
            raise ValueError("no appeals with a time: early warning needs timestamps")
        f["day"] = pd.to_datetime(f["time"]).dt.normalize()
        f = f.sort_values("day", kind="stable").reset_index(drop=True)
        n = len(f)
        self.day0_ = f["day"].iloc[0].date()
        n_days = (f["day"].iloc[-1].date() - self.day0_).days + 1
        day_idx = (f["day"] - pd.Timestamp(self.day0_)).dt.days.to_numpy()
        lex = default_topics()
        self.seasonal_topics_ = {t.name for t in lex.topics if t.seasonal}
        self.anchors_ = {t.name: t.anchors for t in lex.topics}
        # Each distinct text once: raw -> normalised -> (distinct normalised) topics.
        raw_code, raw_uniq = _factorize(f["text"].to_numpy(dtype=object))
        norm = [memo.normalise(t) for t in pd.Series(raw_uniq, dtype=object).astype(str)]
        text_code_of_raw, text_uniq = _factorize(norm)
        text_code = text_code_of_raw[raw_code]                  # per appeal: its distinct normalised text
        texts = np.empty(len(text_uniq), dtype=object)
        texts[:] = text_uniq
        topic_lists = memo.topics(texts, lex)
        set_code_of_text, topic_sets = pd.factorize(np.array(["\x1f".join(t) for t in topic_lists], dtype=object))
        topic_sets = [tuple(topic_lists[i]) for i in np.unique(set_code_of_text, return_index=True)[1]]
        topic_set = set_code_of_text[text_code]                 # per appeal: its topic set
        categories, cat_code = _valid_codes(f["category"] if "category" in f.columns else None, n)
        districts, dist_code = _valid_codes(f["district"] if "district" in f.columns else None, n)
        # Series in the order the appeals first name them, as a row-by-row pass would add
        # them: only the first appeal of each (topics, category, district) can add one.
        nc, nd = len(categories) + 1, len(districts) + 1
        combo = (topic_set.astype(np.int64) * nc + cat_code + 1) * nd + dist_code + 1
        combo_code, combo_uniq = pd.factorize(combo)
        series_index: dict[Series, int] = {}
        combo_series = []
        for c in combo_uniq:
            ts, rest = divmod(int(c), nc * nd)
            ci, di = divmod(rest, nd)
            cat = categories[ci - 1] if ci else None
            dist = districts[di - 1] if di else None
            keys = [Series("topic", t, None) for t in topic_sets[ts]]
            if cat is not None:
                keys.append(Series("category", cat, None))
            keys += [Series(k.kind, k.name, dist) for k in keys] if dist is not None else []
            combo_series.append([series_index.setdefault(k, len(series_index)) for k in keys])
        self.series_ = list(series_index)
        # series × combinations, then per appeal through its combination (no per-appeal lists)
        of_combo = _rows_matrix(combo_series, len(self.series_))          # combinations × series
        member = of_combo[combo_code].T.tocsr()
        member.sort_indices()
        combo_day = sp.csr_matrix((np.ones(n, dtype=np.int32), (combo_code, day_idx)),
                                  shape=(len(combo_uniq), n_days))
        self.counts_ = np.asarray((of_combo.T @ combo_day).todense(), dtype=np.float64)
        self.total_ = np.bincount(day_idx, minlength=n_days).astype(float)
        self.member_ = member
        self.ids_ = f["id"].astype(str).to_numpy()
        users, user_ok = _valid_codes(f["user"] if "user" in f.columns else None, n)
        self.has_users_ = bool((user_ok >= 0).any())
        self._user_codes, self._users = (users, user_ok), None
        self.texts_ = texts[text_code]
        self.times_ = f["time"].to_numpy()
        dist_vals = np.empty(len(districts) + 1, dtype=object)
        dist_vals[:len(districts)] = districts
        self.districts_ = dist_vals[dist_code]
        self.doc_day_ = day_idx
        self.kinds_ = np.array([_KIND_INDEX[day_kind(self.day0_ + timedelta(days=int(d)))] for d in range(n_days)])
        self.dow_ = np.array([(self.day0_ + timedelta(days=int(d))).weekday() for d in range(n_days)])
        self.terms_since_ = terms_since
        # Words for emerging issues: appeals not explained by a seasonal topic.
        known = lex.terms() | set(districts)
        explained_set = np.array([bool(set(t) & self.seasonal_topics_) for t in topic_sets], dtype=bool)
        segment = ~explained_set[topic_set]
        if terms_since is not None:
            segment &= day_idx >= (terms_since - self.day0_).days
        # a word containing a known term (of 2+ characters): one search for all of them
        known_long = re.compile("|".join(re.escape(k) for k in sorted(k for k in known if len(k) >= 2)) or r"(?!)")
        usable: dict[str, bool] = {}  # per distinct word: not a number, a known term or a word containing one
        vocab: dict[str, int] = {}
        seg_docs = np.flatnonzero(segment)
        # Distinct texts in the order their first segmented appeal comes: the vocabulary's
        # order is then the one a row-by-row pass gives.
        firsts = np.unique(text_code[seg_docs], return_index=True)
        words_of: list[list[int]] = [[] for _ in range(len(texts))]
        for code in firsts[0][np.argsort(firsts[1], kind="stable")]:
            ids = []
            for w in memo.words(texts[code]):
                ok = usable.get(w)
                if ok is None:
                    ok = usable[w] = (len(w) >= 2 and not w.isdigit() and w not in known
                                      and not _DIGIT_RUN.search(w)
                                      and not known_long.search(w))
                if ok:
                    ids.append(vocab.setdefault(w, len(vocab)))
            words_of[int(code)] = ids
        self.terms_ = np.array(list(vocab), dtype=object)
        # Words per distinct text (a last, empty row for appeals not segmented), and each
        # appeal's row: the appeal × word matrix is those rows, built only where read.
        words_of.append([])
        self.text_terms_ = _rows_matrix(words_of, len(vocab))
        self.doc_term_row_ = np.where(segment, text_code, len(texts))
        per_day = sp.csr_matrix((np.ones(n, dtype=np.int32), (day_idx, self.doc_term_row_)),
                                shape=(n_days, len(words_of)))
        self.term_day_ = (per_day @ self.text_terms_).tocsr() if len(vocab) else None  # days × terms
        self._doc_terms = self._term_cum = None
        return self

    @property
    def users_(self):
        """Each appeal's sender, ``_<row>`` where none is named (built when first read: only
        a stream that names senders reads them)."""
        if getattr(self, "_users", None) is None and hasattr(self, "_user_codes"):
            users, user_ok = self._user_codes
            user_vals = np.empty(len(users) + 1, dtype=object)
            user_vals[:len(users)] = users
            out = user_vals[user_ok]
            unnamed = np.flatnonzero(user_ok < 0)
            out[unnamed] = np.array([f"_{i}" for i in unnamed.tolist()] or [], dtype=object)
            self._users = out
        return self._users

    @users_.setter
    def users_(self, value):
        self._users = value

    # Appeals × words and cumulative word counts per day, as earlier fits stored them: built
    # when read (the detector itself reads rows of the first and window sums of the second).
    @property
    def doc_terms_(self):
        if getattr(self, "_doc_terms", None) is None and hasattr(self, "text_terms_"):
            self._doc_terms = self.text_terms_[self.doc_term_row_]
        return self._doc_terms

    @doc_terms_.setter
    def doc_terms_(self, value):
        self._doc_terms = value

    @property
    def term_cum_(self):
        if getattr(self, "_term_cum", None) is None and getattr(self, "term_day_", None) is not None:
            self._term_cum = np.vstack([np.zeros((1, self.term_day_.shape[1]), dtype=np.int32),
                                        np.cumsum(self.term_day_.toarray(), axis=0, dtype=np.int32)])
        return getattr(self, "_term_cum", None)

    @term_cum_.setter
    def term_cum_(self, value):
        self._term_cum = value

    def _doc_terms_of(self, docs: np.ndarray):
        """Rows ``docs`` of :attr:`doc_terms_` (CSR), without building the whole matrix."""
        if hasattr(self, "text_terms_"):
            return self.text_terms_[self.doc_term_row_[docs]]
        return self.doc_terms_[docs]

    def _term_window(self, a: int, b: int) -> np.ndarray:
        """Appeals holding each word on days ``a`` to ``b - 1``: ``term_cum_[b] - term_cum_[a]``."""
        if getattr(self, "term_day_", None) is not None:
            return np.asarray(self.term_day_[a:b].sum(axis=0)).ravel() if b > a else \
                np.zeros(self.term_day_.shape[1], dtype=np.int64)
        return self.term_cum_[b] - self.term_cum_[a]

    def _has_terms(self) -> bool:
        if hasattr(self, "text_terms_"):
            return getattr(self, "term_day_", None) is not None
        return self.term_cum_ is not None

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
            # the median day: a storm or landfall on these dates last year is no season
            years.append(np.median(self.counts_[:, s:e_ + 1], axis=1) * w * scale)
        if years:
            e = np.maximum(e, np.mean(years, axis=0))
        e = np.maximum(e, 0.25 * w)
        # Dispersion around the series' local level (a centred 7-day median of the
        # weekday-adjusted counts), the largest 5% of deviations left out: a season's
        # onset in the last 8 weeks is a change of level and a past storm or landfall an
        # outlier, not noise — neither may blind the test to the next one. (Leaving out
        # the top 5% of a normal's squared deviations keeps 0.76 of its variance.)
        lo = max(0, a - 56)
        hist = self.counts_[:, lo:a] / fac[lo:a]
        mu = hist.mean(axis=1)
        if hist.shape[1] >= 14:
            local = median_filter(hist, size=(1, 7), mode="nearest")
            dev2 = np.sort((hist - local) ** 2, axis=1)[:, : int(np.ceil(0.95 * hist.shape[1]))]
            var = dev2.mean(axis=1) * 7 / 6 / 0.76
        else:
            var = hist.var(axis=1)
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
        since = getattr(self, "terms_since_", None)
        if since is not None and max(0, t - since_days - EMERGING_LOOKBACK_DAYS + 1) < self._day(since):
            first = self._date(self._day(since) + since_days + EMERGING_LOOKBACK_DAYS - 1)
            raise ValueError(f"fitted with terms_since={since.isoformat()}: emerging issues as of {self._date(t)} "
                             f"(since_days={since_days}) need words from {self._date(max(0, t - since_days - EMERGING_LOOKBACK_DAYS + 1))}; "
                             f"detect as of {first} or later, or fit with an earlier terms_since")
        m_spike, spikes = self._spikes(t, since_days)
        alerts = [a for p, a in spikes if p <= self.alpha(m_spike, since_days, share=0.5)]
        alerts += [a for _, a in self._emerging(t, since_days)[1]]  # tested with the other half inside
        alerts += self._onsets(t, since_days) + self._forecasts(t)
        for a in alerts:
            a["as_of"] = self._date(t)
        return alerts

    def alpha(self, tests: int, since_days: int, share: float = 1.0) -> float:
        """The p-value an alert needs in a run that made ``tests`` tests over the last
        ``since_days`` days: the ``share`` of the weekly false-alarm budget given to those
        tests, spread over every one made in a week (7 / ``since_days`` runs). Under the
        null each test alarms with probability alpha, so the expected false alarms per
        week is at most the budget, whatever the tests' dependence (linearity of
        expectation; Bonferroni over the week). Spikes and emerging issues get half each:
        the thousands of words screened each day must not drown the few hundred series.

        Examples
        --------
        >>> TrendDetector(false_alarms_per_week=0.7).alpha(100, 1)
        0.001
        """
        return share * self.false_alarms_per_week * since_days / 7 / max(tests, 1)

    def _spikes(self, t, since_days):
        """Windows of ``window_days`` ending on each of the last ``since_days`` days; per
        series the most significant one. Returns (tests made, [(p, alert)])."""
        w = self.window_days
        ends = [e for e in range(t - min(since_days, t + 1) + 1, t + 1) if e - w + 1 >= 28]
        if not ends:
            return 0, []
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
        out = []
        for j in np.nonzero((P < 1.0).any(axis=0))[0]:
            i = int(np.argmin(P[:, j]))
            end, s = ends[i], self.series_[j]
            obs, exp = O[i, j], round(float(E[i, j]), 2)
            out.append((P[i, j], self._alert(
                "spike", s, j, end - w + 1, end, obs, exp, -np.log10(max(P[i, j], 1e-300)),
                f"{s.label()}{self._date(end - w + 1)}至{self._date(end)}收到{int(obs)}件诉求，"
                f"按历史同期、星期和节假日预计约{exp:.1f}件，明显偏高，请关注。")))
        return P.size, out

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
                if above[i] and not above[max(0, i - QUIET_DAYS):i].any():
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
        """The seasonal calendar as of a date: per seasonal topic × district, each recurring
        season (a topic can have several a year: plum rain and typhoons; four tourism
        peaks) with its past onsets, peaks and ends, typical dates and when it is due next.

        A season recurs on a calendar date or with a public holiday: its onsets are
        anchored to the holiday (the Spring Festival moves by weeks between years) when
        they keep a steadier distance to it than to a calendar date.
        """
        t = self.counts_.shape[1] - 1 if as_of is None else min(self._day(as_of), self.counts_.shape[1] - 1)
        weeks = self.forecast_weeks if weeks is None else weeks
        today = self.day0_ + timedelta(days=t)
        roll = _rolling7(self.counts_[:, : max(t + 1, 0)])  # as of a day before the stream: nothing (no look-ahead)
        base = np.median(roll, axis=1) if roll.shape[1] else np.zeros(len(self.series_))
        thr = np.maximum(3 * base + 3 * np.sqrt(base), self.min_count + 2)
        entries = []
        for j, s in enumerate(self.series_):
            if s.kind != "topic" or s.name not in self.seasonal_topics_:
                continue
            # An onset needs three quiet weeks of data before it: a season already under
            # way when the data start, or a dip and rise inside it, is not an onset.
            runs = [r for r in onsets_in(roll[j], thr[j], gap_days=QUIET_DAYS)
                    if r[0] >= QUIET_DAYS + 7 and (roll[j][r[0] - QUIET_DAYS - 7:r[0] - 7] < thr[j]).all()]
            daily_base = base[j] / 7
            seasons = []
            for c, p, e in runs:
                onset = self._onset_day(j, c, daily_base)
                seasons.append({"onset": self._date(onset), "peak": self._date(p), "end": self._date(e),
                                "peak_7day_count": int(roll[j][p]), "_onset_idx": onset})
            for group in _recurring([date.fromisoformat(x["onset"]) for x in seasons]):
                entries.append(self._calendar_entry(s, j, [seasons[i] for i in group], today, weeks))
        return {"as_of": self._date(t), "horizon_weeks": weeks, "entries": entries}

    def _calendar_entry(self, s: Series, j: int, seasons: list[dict], today: date, weeks: int) -> dict:
        onsets = [date.fromisoformat(x["onset"]) for x in seasons]
        anchor, offset, spread = _anchor(onsets, self.anchors_.get(s.name, ()))
        peaks = [date.fromisoformat(x["peak"]) for x in seasons]
        length = [(date.fromisoformat(x["end"]) - d).days for x, d in zip(seasons, onsets)]
        nxt = _next_onset(today, anchor, offset, onsets)
        return {"topic": redact(s.name), "district": redact(s.district) if s.district else None,
                "n_seasons": len(seasons), "anchor": anchor,
                "anchor_offset_days": offset if anchor != "日历" else None,
                "typical_onset": _month_day(_circular_median_doy(onsets)), "onset_spread_days": spread,
                "typical_peak": _month_day(_circular_median_doy(peaks)),
                "typical_length_days": int(np.median(length)),
                "seasons": [{k: v for k, v in x.items() if not k.startswith("_")} for x in seasons],
                "next_onset": nxt.isoformat(), "due_within_weeks": (nxt - today).days <= 7 * weeks,
                "_series": j, "_runs": seasons}

    def _onset_day(self, j, cross, daily_base) -> int:
        """The first day of the rise whose 7-day count crossed its threshold on day ``cross``:
        Page's CUSUM change-point estimate, the day after the CUSUM of (count - k) over the
        ``ONSET_SEARCH_DAYS`` before ``cross`` was last zero, with k a quarter of a standard
        deviation (Poisson) above the off-season daily level, plus a half for integer counts;
        at most ``ONSET_MAX_BACK`` days back. A season rises over days: the first day above a
        high level (what this was) comes 1-2 days late, and forecasts inherit the lag."""
        k = daily_base + 0.25 * np.sqrt(daily_base) + 0.5
        lo = max(0, cross - ONSET_SEARCH_DAYS)
        cusum, last_zero = 0.0, lo - 1
        for i, v in enumerate(self.counts_[j, lo:cross + 1], start=lo):
            cusum = max(0.0, cusum + v - k)
            if cusum == 0.0:
                last_zero = i
        return min(max(last_zero + 1, cross - ONSET_MAX_BACK, 0), cross)

    def _forecasts(self, t):
        if t < 300:
            return []
        today = self.day0_ + timedelta(days=t)
        plans = []
        for entry in self.calendar(self._date(t))["entries"]:
            j = entry["_series"]
            # Only seasons that ended before today count as history for the forecast.
            past = [r for r in entry["_runs"] if date.fromisoformat(r["end"]) < today - timedelta(days=7)]
            if not past:
                continue
            if any(today - timedelta(days=60) < date.fromisoformat(r["onset"]) <= today for r in entry["_runs"]):
                continue  # this season has begun already
            onsets = [date.fromisoformat(r["onset"]) for r in past]
            plans.append((entry, j, past, onsets, *_anchor(onsets, self.anchors_.get(self.series_[j].name, ()))))
        # One past season in a district says little about its date: such a district takes
        # the median over the city's districts of this topic on the same anchor.
        pooled: dict[tuple[str, str], list[int]] = {}
        for _, j, _, _, anchor, offset, _ in plans:
            pooled.setdefault((self.series_[j].name, anchor), []).append(offset)
        out = []
        for entry, j, past, onsets, anchor, offset, spread in plans:
            if len(past) == 1:
                offset = int(np.median(pooled[(self.series_[j].name, anchor)]))
            nxt = _next_onset(today, anchor, offset, onsets)
            if not (today < nxt <= today + timedelta(weeks=self.forecast_weeks)):
                continue
            recent = self.counts_[j, max(0, t - 6):t + 1].sum()
            last = past[-1]
            ev = self._evidence(j, last["_onset_idx"], last["_onset_idx"] + 13, limit=20)
            s = self.series_[j]
            basis = f"往年均在{anchor}前后" if anchor != "日历" else f"往年{len(past)}个季度"
            a = self._alert("forecast", s, j, None, None, int(recent), float(last["peak_7day_count"]),
                            float(len(past)),
                            f"{s.label()}预计{nxt.month}月{nxt.day}日前后进入季节性高发期（{basis}，"
                            f"波动约±{spread:.0f}天），建议提前准备。")
            a["window_start"] = nxt.isoformat()
            a["window_end"] = (nxt + timedelta(days=entry["typical_length_days"])).isoformat()
            a["evidence_ids"] = ev
            out.append(a)
        return out

    def _emerging(self, t, since_days):
        """Emerging issues first qualifying in the last ``since_days`` days: a group whose
        appeals overlap a group that qualified as of the previous run is the same issue,
        already reported. Returns (tests made, [(p, alert)])."""
        tests, found = self._emerging_groups(t, since_days)
        if not found:
            return tests, []
        _, before = self._emerging_groups(t - since_days, since_days)
        seen_docs = set().union(*(set(docs.tolist()) for _, docs, _, _ in before)) if before else set()
        seen_words = set().union(*(w for _, _, w, _ in before)) if before else set()
        out: list[tuple[float, dict, set]] = []
        for p, docs, words, a in sorted(found, key=lambda x: x[0]):
            if seen_docs & set(docs.tolist()) or seen_words & words:
                continue  # the same issue as one already qualifying at the previous run
            for _, kept, kept_words in out:  # one issue split into groups: one alert, all evidence
                if kept_words & words:
                    kept["evidence_ids"] = (kept["evidence_ids"] + [i for i in a["evidence_ids"]
                                                                    if i not in kept["evidence_ids"]])[:50]
                    kept_words |= words
                    break
            else:
                out.append((p, a, set(words)))
        return tests, [(p, a) for p, a, _ in out]

    def _emerging_groups(self, t, since_days):
        """Issues that are new: words whose share of the last 14 days' appeals is far above
        their share of the half-year before, in appeals no seasonal topic explains.

        Every word seen in the window is a test (no selection before the correction). The
        appeals holding the words that pass are grouped (:meth:`_groups_of`); a group is a
        candidate issue, counted in distinct sources — senders where the stream names
        them, else texts, a re-post and its near-duplicates counting once — and tested on
        that count, so re-posting cannot make an issue. Returns (tests made,
        [(p, appeals, rising words, alert)]) for the groups that pass.
        """
        if not self._has_terms() or t < 120:
            return 0, []
        recent_days, hist_days = 14, 180
        docs_cum = np.concatenate([[0], np.cumsum(self.total_)])

        def window(end, length):  # (term doc counts, appeals) in the `length` days ending at day `end`
            a, b = max(0, end + 1 - length), max(0, end + 1)
            return self._term_window(a, b), docs_cum[b] - docs_cum[a]

        def expected(end):
            r, n_r = window(end, recent_days)
            h, n_h = window(end - recent_days, hist_days)
            # A term's share of appeals in the past half-year, applied to the recent volume.
            return r, (h + 0.5) / (n_h + 1.0) * n_r, n_h

        r, rate0, n_hist = expected(t)
        if n_hist < 200:
            return 0, []  # too little history to call anything new
        tests = int((r > 0).sum())

        def passing(r, rate):
            return (r >= self.emerging_min_docs) & (r >= self.emerging_min_ratio * rate)

        idx = np.nonzero(passing(r, rate0))[0]
        if not len(idx):
            return tests, []
        keep = idx[stats.poisson.sf(r[idx] - 1, rate0[idx]) <= self.alpha(tests, since_days, share=0.5)]
        if not len(keep):
            return tests, []
        alpha = self.alpha(tests, since_days, share=0.5)
        in_window = np.nonzero((self.doc_day_ > t - recent_days) & (self.doc_day_ <= t))[0]
        held = self._doc_terms_of(in_window)[:, keep].tocsr()
        cand = in_window[np.asarray(held.sum(axis=1)).ravel() > 0]
        out = []
        for docs in self._groups_of(cand):
            sources = self._sources(docs)
            if sources < self.emerging_min_users:
                continue  # one or two people (or one text) posting again and again is not a new issue
            # The group's rising words: those most of its appeals hold; its p-value on its
            # distinct sources against the least expected of them (each was a test above).
            share = np.asarray(self._doc_terms_of(docs)[:, keep].mean(axis=0)).ravel()
            words = keep[share >= 0.5]
            if not len(words):
                continue
            k = words[np.argmin(rate0[words])]
            exp = float(rate0[k])
            p = float(stats.poisson.sf(sources - 1, exp))
            if p > alpha:
                continue
            place, keywords = describe(self.texts_[docs].tolist())
            matter = "、".join(keywords) or str(self.terms_[k])
            name = f"{place}：{matter}" if place else matter
            districts = pd.Series(self.districts_[docs]).dropna()
            district = districts.mode().iloc[0] if len(districts) and districts.value_counts().iloc[0] > len(docs) / 2 else None
            out.append((p, docs, set(words.tolist()), {"kind": "emerging", "topic": redact("新问题：" + name),
                                                      "category": None,
                            "district": redact(district) if district else None,
                            "window_start": self._date(t - recent_days + 1),
                            "window_end": self._date(t), "observed": int(sources), "expected": round(exp, 2),
                            "score": round(float(-np.log10(max(p, 1e-300))), 2),
                            "group_id": f"E{self.ids_[docs[0]]}",
                            "evidence_ids": self.ids_[docs[:50]].tolist(),
                            "summary": redact(f"近两周出现新的诉求热点「{name}」：{int(sources)}个来源"
                                              f"（{len(docs)}件），按此前半年的占比预计约{exp:.1f}件，"
                                              f"且不属于已知季节性问题，请研判。")}))
        return tests, out

    def _groups_of(self, docs: np.ndarray) -> list[np.ndarray]:
        """The appeals ``docs`` grouped by :class:`models.hotspots.HotspotGrouper` (text,
        place, time; in time order, so no look-ahead), groups of two or more. An appeal that
        shares a rising word but nothing else with the rest (a routine appeal that happens to
        mention 电动车) is not evidence of the new issue."""
        grouper = HotspotGrouper()
        order = docs[np.argsort(self.times_[docs].astype("datetime64[ns]"), kind="stable")]
        gid = np.array([grouper.add(str(self.ids_[i]), self.times_[i], self.texts_[i], district=self.districts_[i],
                                    user=self.users_[i] if self.has_users_ else None) for i in order])
        return [np.sort(order[gid == g]) for g in dict.fromkeys(gid) if (gid == g).sum() >= 2]

    def _sources(self, docs: np.ndarray) -> int:
        """Distinct sources among appeals ``docs``: senders where the stream names them,
        else near-duplicate groups of their texts (a re-post counts once)."""
        if self.has_users_:
            return len(set(self.users_[docs]))
        return int(near_duplicate_groups(self.texts_[docs]).max() + 1) if len(docs) else 0

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


def _factorize(values) -> tuple[np.ndarray, list]:
    """(code per value, distinct values in order of first appearance) of a sequence of
    hashable objects by Python's own hash, computed once per string object and kept (appeals
    repeat texts, which then share one object; ``pd.factorize`` hashes the characters of
    every string again). Missing values (None, NaN) are values like any other.

    >>> _factorize(["b", "a", "b"])
    (array([0, 1, 0]), ['b', 'a'])
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
        code, uniques = pd.factorize(values)
        return code.astype(np.intp, copy=False), uniques.tolist()
    values = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) or values.dtype != object \
        else values
    try:  # pandas' table of Python objects: the same, in C
        from pandas._libs.hashtable import PyObjectHashTable

        uniques, code = PyObjectHashTable(len(values)).factorize(values, na_sentinel=-1, na_value=None, mask=None,
                                                                 ignore_na=False)
        return code.astype(np.intp, copy=False), list(uniques)
    except (ImportError, TypeError, AttributeError):  # another pandas
        seen: dict = {}
        code = np.fromiter((seen.setdefault(v, len(seen)) for v in values), dtype=np.intp, count=len(values))
        return code, list(seen)


def _rows_matrix(lists: list[list[int]], n_cols: int) -> sp.csr_matrix:
    """A 0/1 int32 CSR matrix whose row ``i`` holds ones at columns ``lists[i]`` (distinct)."""
    lens = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    indptr = np.concatenate([[0], np.cumsum(lens)])
    indices = np.fromiter((j for x in lists for j in x), dtype=np.int32, count=int(indptr[-1]))
    return sp.csr_matrix((np.ones(len(indices), dtype=np.int32), indices, indptr), shape=(len(lists), n_cols))


class TextMemo:
    """The per-text work of :meth:`TrendDetector.fit` kept between fits: each text's
    normalised form, topics (:meth:`corpora.topics.TopicLexicon.assign_many`) and words
    (redacted, segmented). A weekly digest fits years of appeals whose texts do not change
    from one week to the next; with a memo kept from the last run only the new texts are
    processed. It depends on the text pipeline's data and libraries (the topic lexicon,
    negation words, user dictionary, OpenCC, jieba): whoever stores one keys it by them
    (``service.digest_cache``). Picklable.

    >>> m = TextMemo()
    >>> m.normalise("樓道裡有煤氣味"), m.words("楼道里有煤气味") == tuple(set(tokenize("楼道里有煤气味")))
    ('楼道里有煤气味', True)
    """

    def __init__(self):
        self.normalised: dict[str, str] = {}
        self.topic_lists: dict[str, tuple] = {}
        self.word_lists: dict[str, tuple] = {}

    def normalise(self, text: str) -> str:
        out = self.normalised.get(text)
        if out is None:
            out = self.normalised[text] = normalise(text)
        return out

    def topics(self, texts, lex) -> list[list[str]]:
        """``lex.assign_many(texts)``, computing only texts not seen before."""
        missing = [t for t in dict.fromkeys(texts) if t not in self.topic_lists]
        for t, found in zip(missing, lex.assign_many(missing)):
            self.topic_lists[t] = tuple(found)
        return [list(self.topic_lists[t]) for t in texts]

    def words(self, text: str) -> tuple:
        """The distinct words of a normalised text, personal data cut out first (in the
        order a set of them iterates in the process that segmented it)."""
        out = self.word_lists.get(text)
        if out is None:
            # Words are shown to people in alerts: personal data (a phone number many
            # people report, an ID number) is cut out before segmentation, and a word with
            # a long digit run that redaction did not recognise is never a term.
            out = self.word_lists[text] = tuple(set(tokenize(redact(text, placeholder=" "))))
        return out

    def keep(self, texts) -> TextMemo:
        """Only the entries of ``texts`` (as given to fit) and their normalised forms."""
        texts = set(texts)
        if len(texts) == len(self.normalised) and texts.issuperset(self.normalised):
            return self
        normed = {self.normalised[t] for t in texts if t in self.normalised}
        self.normalised = {k: v for k, v in self.normalised.items() if k in texts}
        self.topic_lists = {k: v for k, v in self.topic_lists.items() if k in normed}
        self.word_lists = {k: v for k, v in self.word_lists.items() if k in normed}
        return self


def _valid_codes(values: pd.Series | None, n: int) -> tuple[list, np.ndarray]:
    """(distinct non-empty strings in order of first appearance, code per row; -1 where
    the value is missing, empty or not a string)."""
    if values is None:
        return [], np.full(n, -1, dtype=np.int64)
    code, uniq = _factorize(values.to_numpy(dtype=object))
    ok = np.array([isinstance(v, str) and bool(v) for v in uniq], dtype=bool)
    new = np.full(len(uniq) + 1, -1, dtype=np.int64)
    new[:-1][ok] = np.arange(int(ok.sum()))
    return [v for v, k in zip(uniq, ok) if k], new[code]


def _rolling7(counts: np.ndarray) -> np.ndarray:
    if counts.shape[1] == 0:
        return counts
    c = np.cumsum(np.pad(counts, ((0, 0), (1, 0))), axis=1)
    out = c[:, 1:] - c[:, np.maximum(0, np.arange(1, counts.shape[1] + 1) - 7)]
    return out


def _doy(d: date) -> int:
    return d.timetuple().tm_yday - 1 - (1 if d.month > 2 and d.year % 4 == 0 else 0)  # 0..364


def _recurring(onsets: list[date], gap: int = 30) -> list[list[int]]:
    """Group onsets into recurring seasons: indices whose days of the year (on a circle,
    so December and January are neighbours) lie within ``gap`` days of each other.

    Examples
    --------
    >>> _recurring([date(2023, 6, 15), date(2023, 8, 10), date(2024, 6, 10), date(2024, 8, 20)])
    [[0, 2], [1, 3]]
    >>> _recurring([date(2023, 12, 28), date(2025, 1, 5)])
    [[0, 1]]
    """
    if not onsets:
        return []
    doy = np.array([_doy(d) for d in onsets])
    order = np.argsort(doy, kind="stable")
    sd = doy[order]
    gaps = np.diff(np.append(sd, sd[0] + 365))  # gap after each onset, the last wraps around
    cut = np.nonzero(gaps > gap)[0]
    if not len(cut):
        return [sorted(order.tolist())]
    groups, start = [], (cut[-1] + 1) % len(sd)  # begin after the widest-apart wrap
    rot = np.roll(order, -start)
    rgaps = np.roll(gaps, -start)
    cur = []
    for i, g in zip(rot, rgaps):
        cur.append(int(i))
        if g > gap:
            groups.append(sorted(cur))
            cur = []
    if cur:
        groups.append(sorted(cur))
    return sorted(groups)


def _circular_median_doy(days: list[date]) -> int:
    """The day of the year nearest to all of ``days`` (December and January are close)."""
    doy = np.array([_doy(d) for d in days])
    dist = lambda c: np.minimum(np.abs(doy - c), 365 - np.abs(doy - c)).sum()  # noqa: E731
    return int(min(doy, key=dist))


def _circular_spread(values: np.ndarray) -> float:
    return float(np.median(np.abs(values - np.median(values)))) if len(values) > 1 else 0.0


def _anchor(onsets: list[date], allowed: tuple[tuple[str, int], ...] = ()) -> tuple[str, int, float]:
    """(anchor, offset, spread): ``"日历"`` with the typical day of the year, or a public
    holiday with the median days from its first day, whichever the onsets keep steadier
    (median absolute deviation, days). ``allowed``: the holidays the topic's seasons may
    follow, each with the most days from it (``corpora/data/topics.csv``); without them
    any holiday within 45 days. One past season cannot show which is steadier: it follows
    the nearest allowed holiday, or without any, the calendar (a summer season that once
    began three days after the Dragon Boat Festival does not move with it: anchored so, a
    district's heat season was forecast 19 days early the next year).

    Examples
    --------
    >>> _anchor([date(2023, 12, 22)], (("春节", 70),))  # Spring Festival 2024 began 10 February
    ('春节', -50, 0.0)
    >>> _anchor([date(2023, 12, 22)])[0]
    '日历'
    >>> _anchor([date(2023, 6, 25)])[0]  # three days after the Dragon Boat Festival
    '日历'
    """
    c = _circular_median_doy(onsets)
    cal_dev = np.array([(_doy(d) - c + 182) % 365 - 182 for d in onsets])
    best = ("日历", c, _circular_spread(cal_dev))
    limits = dict(allowed) if allowed else {name: 45 for name in holiday_starts()}
    nearest = None
    for name, limit in limits.items():
        offs = []
        for d in onsets:
            near = [(d - h).days for h in holiday_starts()[name] if abs((d - h).days) <= limit]
            if not near:
                break
            offs.append(min(near, key=abs))
        else:
            offs = np.array(offs)
            spread = _circular_spread(offs)
            if len(onsets) > 1 and spread + 2 < best[2]:
                best = (name, int(np.median(offs)), spread)
            if len(onsets) == 1 and allowed and (nearest is None or abs(offs[0]) < abs(nearest[1])):
                nearest = (name, int(offs[0]), 0.0)
    name, value, spread = nearest or best
    return name, int(value), round(spread, 1)


def _next_onset(today: date, anchor: str, offset: int, onsets: list[date]) -> date:
    """The next onset after ``today``: ``offset`` days from the holiday's next start, or on
    the typical day of the year (also when the holiday's dates are not known that far)."""
    if anchor != "日历":
        for h in holiday_starts()[anchor]:
            if h + timedelta(days=offset) > today:
                return h + timedelta(days=offset)
        offset = _circular_median_doy(onsets)
    for year in (today.year - 1, today.year, today.year + 1):
        d = date(year, 1, 1) + timedelta(days=offset + (1 if offset >= 59 and year % 4 == 0 else 0))
        if d > today:
            return d
    return date(today.year + 2, 1, 1) + timedelta(days=offset)


def _month_day(doy: int) -> str:
    d = date(2001, 1, 1) + timedelta(days=int(doy))
    return f"{d.month:02d}-{d.day:02d}"
