"""TrendDetector.fit's fast path (each distinct text once, vectorised series, words only
where emerging issues look) against a straightforward row-by-row reference kept here,
and ``terms_since`` against the full fit on the as-of dates it supports."""
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from corpora.holidays import day_kind
from corpora.simulate import CityConfig, simulate_stream
from corpora.text import normalise, redact, tokenize
from corpora.topics import default_topics
from models.trends import _DIGIT_RUN, _KIND_INDEX, EMERGING_LOOKBACK_DAYS, Series, TrendDetector


class RowByRowDetector(TrendDetector):
    """The fit as it was before the fast path: every appeal normalised, assigned and
    segmented on its own. Detection is inherited unchanged."""

    def fit(self, frame, y=None):
        f = frame[frame["time"].notna()].copy()
        f["day"] = pd.to_datetime(f["time"]).dt.normalize()
        f = f.sort_values("day", kind="stable").reset_index(drop=True)
        self.day0_ = f["day"].iloc[0].date()
        n_days = (f["day"].iloc[-1].date() - self.day0_).days + 1
        day_idx = (f["day"] - pd.Timestamp(self.day0_)).dt.days.to_numpy()
        lex = default_topics()
        self.seasonal_topics_ = {t.name for t in lex.topics if t.seasonal}
        self.anchors_ = {t.name: getattr(t, "anchors", ()) for t in lex.topics}  # holidays a season may follow
        texts = [normalise(t) for t in f["text"].astype(str)]
        categories = f["category"].tolist() if "category" in f.columns else [None] * len(f)
        districts = [d if isinstance(d, str) and d else None for d in
                     (f["district"].tolist() if "district" in f.columns else [None] * len(f))]
        topics = [lex.assign(t) for t in texts]
        series_index, rows, cols = {}, [], []
        for i, (tops, cat, dist) in enumerate(zip(topics, categories, districts)):
            keys = [Series("topic", t, None) for t in tops]
            if isinstance(cat, str) and cat:
                keys.append(Series("category", cat, None))
            keys += [Series(k.kind, k.name, dist) for k in keys] if dist else []
            for k in keys:
                rows.append(series_index.setdefault(k, len(series_index)))
                cols.append(i)
        self.series_ = list(series_index)
        member = sp.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(self.series_), len(f)))
        day_onehot = sp.csr_matrix((np.ones(len(f), dtype=np.int32), (np.arange(len(f)), day_idx)),
                                   shape=(len(f), n_days))
        self.counts_ = np.asarray((member @ day_onehot).todense(), dtype=np.float64)
        self.total_ = np.bincount(day_idx, minlength=n_days).astype(float)
        self.member_ = member
        self.ids_ = f["id"].astype(str).to_numpy()
        users = f["user"] if "user" in f.columns else pd.Series([None] * len(f))
        self.has_users_ = bool(users.map(lambda u: isinstance(u, str) and bool(u)).any())
        self.texts_ = np.array(texts, dtype=object)
        self.times_ = f["time"].to_numpy()
        self.districts_ = np.array(districts, dtype=object)
        self.users_ = np.array([u if isinstance(u, str) and u else f"_{i}" for i, u in enumerate(users)], dtype=object)
        self.doc_day_ = day_idx
        self.kinds_ = np.array([_KIND_INDEX[day_kind(self.day0_ + timedelta(days=int(d)))] for d in range(n_days)])
        self.dow_ = np.array([(self.day0_ + timedelta(days=int(d))).weekday() for d in range(n_days)])
        known = lex.terms() | {d for d in districts if d}
        explained = np.array([bool(set(t) & self.seasonal_topics_) for t in topics])
        known_long = [k for k in known if len(k) >= 2]
        vocab, r2, c2 = {}, [], []
        for i, t in enumerate(texts):
            if explained[i]:
                continue
            for w in set(tokenize(redact(t, placeholder=" "))):
                if (len(w) >= 2 and not w.isdigit() and w not in known and not _DIGIT_RUN.search(w)
                        and not any(k in w for k in known_long)):
                    r2.append(i)
                    c2.append(vocab.setdefault(w, len(vocab)))
        self.terms_ = np.array(list(vocab), dtype=object)
        self.doc_terms_ = sp.csr_matrix((np.ones(len(r2), dtype=np.int32), (r2, c2)), shape=(len(f), len(vocab)))
        term_day = (day_onehot.T @ self.doc_terms_).tocsr()
        self.term_cum_ = np.vstack([np.zeros((1, len(vocab)), dtype=np.int32),
                                    np.cumsum(term_day.toarray(), axis=0, dtype=np.int32)]) if len(vocab) else None
        return self


CITIES = {
    "north-senders": (CityConfig(base_per_day=45, senders=True), 3),
    "south-coastal": (CityConfig(kind="south", coastal=True, base_per_day=45), 8),
}


@pytest.fixture(scope="module", params=sorted(CITIES))
def stream(request):
    city, seed = CITIES[request.param]
    frame, _ = simulate_stream(start="2024-03-01", end="2025-06-30", city=city, seed=seed)
    # Some appeals without a district, one without a time, a re-post with traditional characters.
    frame = frame.copy()
    frame.loc[frame.index[::97], "district"] = None
    frame.loc[frame.index[5], "time"] = None
    row = frame.iloc[[200]].assign(id="trad", text=lambda x: x["text"] + "，樓道裡有煤氣味")
    return pd.concat([frame, row], ignore_index=True)


@pytest.fixture(scope="module")
def fitted(stream):
    return RowByRowDetector().fit(stream), TrendDetector().fit(stream)


def _sundays(frame, first, every=14):
    d, last = date.fromisoformat(first), pd.to_datetime(frame["time"]).max().date()
    while d <= last:
        yield d.isoformat()
        d += timedelta(days=every)


def test_fast_fit_indexes_exactly_as_row_by_row(fitted):
    ref, fast = fitted
    assert fast.series_ == ref.series_
    np.testing.assert_array_equal(fast.counts_, ref.counts_)
    np.testing.assert_array_equal(fast.total_, ref.total_)
    assert (fast.member_ != ref.member_).nnz == 0
    for name in ("ids_", "texts_", "times_", "districts_", "users_", "doc_day_", "kinds_", "dow_", "terms_"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(ref, name), err_msg=name)
    assert fast.has_users_ == ref.has_users_
    assert (fast.doc_terms_ != ref.doc_terms_).nnz == 0
    np.testing.assert_array_equal(fast.term_cum_, ref.term_cum_)


def test_fast_fit_gives_the_same_alerts_and_calendar(stream, fitted):
    ref, fast = fitted
    n = 0
    for d in _sundays(stream, "2024-06-02"):
        a = ref.detect(d, since_days=7)
        assert fast.detect(d, since_days=7) == a, d
        n += len(a)
    assert n > 10  # the comparison covered alerts, not only quiet weeks
    assert fast.calendar("2025-06-29", weeks=4) == ref.calendar("2025-06-29", weeks=4)


def test_terms_since_gives_the_full_fit_alerts_where_it_can(stream, fitted):
    _, full = fitted
    cut = date(2024, 11, 1)
    part = TrendDetector().fit(stream, terms_since=cut)
    assert len(part.terms_) < len(full.terms_)
    np.testing.assert_array_equal(part.counts_, full.counts_)
    first = cut + timedelta(days=EMERGING_LOOKBACK_DAYS + 7 - 1)
    emerging = 0
    for d in _sundays(stream, first.isoformat(), every=7):
        a = full.detect(d, since_days=7)
        assert part.detect(d, since_days=7) == a, d
        emerging += sum(x["kind"] == "emerging" for x in a)
    assert part.detect(first.isoformat(), since_days=1) == full.detect(first.isoformat(), since_days=1)
    with pytest.raises(ValueError, match="terms_since=2024-11-01"):
        part.detect((first - timedelta(days=1)).isoformat(), since_days=7)


def test_terms_since_is_checked():
    frame = pd.DataFrame({"id": ["1"], "time": ["2024-01-01 08:00"], "text": ["小区暖气不热"]})
    with pytest.raises(ValueError, match="terms_since must be a date"):
        TrendDetector().fit(frame, terms_since="soon")
    assert TrendDetector().fit(frame, terms_since="2023-01-01").detect("2024-01-01") == []


def test_a_memo_of_earlier_fits_gives_the_same_fit(stream, fitted):
    """TextMemo: the per-text work of one fit reused by the next (the digest keeps it from
    one week to the next) changes nothing."""
    from models.trends import TextMemo

    _, fast = fitted
    memo = TextMemo()
    TrendDetector().fit(stream.iloc[: len(stream) // 2], memo=memo)
    known = len(memo.normalised)
    again = TrendDetector().fit(stream, memo=memo)
    assert known < len(memo.normalised)  # the new texts were added
    assert again.series_ == fast.series_
    np.testing.assert_array_equal(again.counts_, fast.counts_)
    for name in ("ids_", "texts_", "terms_", "doc_day_"):
        np.testing.assert_array_equal(getattr(again, name), getattr(fast, name), err_msg=name)
    assert (again.doc_terms_ != fast.doc_terms_).nnz == 0
    for d in list(_sundays(stream, "2024-06-02", every=28)):
        assert again.detect(d, since_days=7) == fast.detect(d, since_days=7), d
    memo.keep(stream["text"].iloc[:10])
    assert len(memo.normalised) <= 10 and set(memo.topic_lists) <= set(memo.normalised.values())
