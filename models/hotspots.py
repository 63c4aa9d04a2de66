"""Hotspots: appeals about one problem in one place, grouped as they arrive.

A new appeal joins an existing group or opens one in about a millisecond, without
re-clustering history (:meth:`HotspotGrouper.add`). It joins group G when, against at
least one of G's *representatives* (its first appeal and up to ``n_representatives - 1``
appeals that themselves match that first appeal, so groups never grow by chaining
neighbour to neighbour):

- **near-duplicate text**: the MinHash estimate of the Jaccard similarity of their
  character ``shingle_size``-grams is at least ``threshold``; or
- **same matter**: the cosine of their word TF-IDF vectors (jieba content words of
  :func:`corpora.text.tokenize`, generic wording and place names left out, sublinear tf,
  idf from the appeals seen so far) is at least ``cosine``; or
- **same place, same matter**: the appeal names a place G's representatives name (a named
  小区, 村, school, road, company, developer or project …, see :mod:`corpora.places`; one
  name inside the other counts, 魅力之城 / 万科魅力之城, and so does a text holding one of
  G's place names of three characters or more verbatim, suffix or not: "万科魅力之城"
  names 魅力之城小区's group) and the word cosine is at least
  ``place_cosine``, or the text similarity is at least ``place_threshold``, or they share a
  topic of ``corpora/data/topics.csv``, or their keywords overlap (at least
  ``matter_threshold`` of the smaller keyword set, two words or more); for the text
  similarity and keyword tests, one of G's senders counts as G's place;

and the appeal is within ``window_days`` of G's appeals (``place_window_days`` when it names
G's place: one developer's campaign runs for months; with no limit when one of G's senders
writes again about G's place: a follow-up a year on), and does not name a *different*
named place (level 4: two different 小区 with the same problem stay apart). An exact
re-post (same text after normalisation, case, spaces and punctuation ignored) always
joins the group of its original, whatever its time or place.

Candidates come from a MinHash LSH index over representatives (``band_rows`` rows per
band) and from indexes of places, senders and representatives' keywords (two shared), so
the cost of an appeal grows little with history. MinHash is a small numpy implementation
rather than ``datasketch``: all of
an appeal's shingles are coded and hashed in one vectorised step (datasketch hashes each
shingle with SHA-1 in Python), hashing is deterministic across processes, and no
dependency is added.

**Repeat appeals** (重复诉求): an appeal is marked ``repeat`` when its sender already wrote
to the same group (linked to those appeals), when it re-posts an earlier appeal's exact
text and no sender tells otherwise, or when it says so (a cue from
``corpora/data/repeat_cues.txt`` such as 多次反映 / 至今未解决; linked to the group's
latest earlier appeals).

**Heat** (0–100), for an official to read: a weighted mean of six parts, each in [0, 1],
times 100 —

====================  ======  ===============================================
part                  weight  value
====================  ======  ===============================================
people                30      ``1 - 0.5 ** (people / 5)``: half at 5 senders
volume                20      ``1 - 0.5 ** (appeals / 10)``: half at 10 appeals
growth                15      last 7 days' daily rate / (that + the 21 days
                              before's daily rate); 0.5 is steady, 1 is new
recency               15      ``0.5 ** (days since the last appeal / 14)``
urgency               10      mean of critical 1, urgent 0.5, routine 0
likes                 10      ``1 - 0.5 ** (likes / 20)``: half at 20 likes
====================  ======  ===============================================

as of ``until`` (or the latest appeal seen). A part whose data the channel lacks
(urgency, likes) is left out and the other weights are rescaled. ``people`` counts
distinct senders; an appeal without a sender counts as one person per distinct text.
"""
from __future__ import annotations

import heapq
import logging
import math
import re
from collections import Counter
from datetime import datetime, timezone
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd

from corpora.places import LEVELS, Place, find_places, place_key
from corpora.text import DATA_DIR, normalise, redact, tokenize

__all__ = ["HotspotGrouper", "describe", "heat_score", "HEAT_WEIGHTS"]

log = logging.getLogger(__name__)

HEAT_WEIGHTS = {"people": 30, "volume": 20, "growth": 15, "recency": 15, "urgency": 10, "likes": 10}
_URGENCY_WEIGHT = {"critical": 1.0, "urgent": 0.5, "routine": 0.0}
_NOT_WORD = re.compile(r"[\W_]+")
_DAY_NS = 86_400e9
_IDF_PRIOR = 100  # the matter's idf counts 100 appeals holding no word, so the first appeals of a stream compare sanely
PLACE_CHARS = 1000  # places are looked for in an appeal's first 1,000 characters (title and opening)
_MERSENNE_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def _lines(name: str) -> list[str]:
    out = []
    for line in (DATA_DIR / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


@lru_cache(maxsize=1)
def _repeat_cues() -> re.Pattern:
    cues = _lines("repeat_cues.txt")
    return re.compile("|".join(re.escape(c) for c in sorted(cues, key=len, reverse=True)))


@lru_cache(maxsize=1)
def _stopwords() -> frozenset:
    return frozenset(_lines("summary_stopwords.txt"))


@lru_cache(maxsize=1)
def _topics():
    from corpora.topics import default_topics

    return default_topics()


_ASCII_WORD = re.compile(r"[A-Za-z0-9.]+")


@lru_cache(maxsize=200_000)
def _is_word(w: str) -> bool:
    return len(w) >= 2 and w not in _stopwords() and not _ASCII_WORD.fullmatch(w)


def _content_words(tokens: list[str], places: list[Place]) -> list[str]:
    """Words that can say what an appeal is about: not generic wording, numbers or place names."""
    names = "\x00".join(p.name for p in places)
    # not a place name nor a piece of one (区丽发 from A2区丽发新城)
    keep = {w for w in set(tokens) if _is_word(w) and w not in names
            and not (len(w) >= 3 and (w[1:] in names or w[:-1] in names))}
    return [w for w in tokens if w in keep]


def _topics_of(text: str) -> frozenset:
    """The topics of a normalised text (:meth:`corpora.topics.TopicLexicon.assign_many`)."""
    return frozenset(_topics().assign_many([text], normalised=True)[0])


def _warm_up() -> None:
    """Load what grouping reads (segmenter, rule files, the topics' Vectorscan database):
    before forking processes that group, so they share it rather than each loading it."""
    _topics_of(tokenize("小区暖气不热")[0])
    find_places("幸福里小区")
    _repeat_cues()
    _stopwords()


def _normalised(raw: str) -> tuple[str, str]:
    """(the normalised text, its letters and digits lower-cased: exact re-posts share it)."""
    text = normalise(raw)
    return text, _NOT_WORD.sub("", text.lower())


class _TextFeatures(NamedTuple):
    """An appeal's features that its text and district alone decide (see ``_text_features``)."""

    text: str
    stripped: str
    best: Place | None
    district: str | None
    a_key: str | None
    conflict_key: str | None
    words: list | None
    counts: Counter | None
    wordset: set | None
    places: frozenset | None
    topics: frozenset | None
    sig: np.ndarray | None
    band_keys: list | None


def _rank_words(word_lists: list[list[str]], idf, k: int) -> list[str]:
    """The ``k`` words held by most texts, weighted by ``idf`` (ties: most frequent, first seen)."""
    df, tf, first = Counter(), Counter(), {}
    for words in word_lists:
        df.update(set(words))
        tf.update(words)
        for w in words:
            first.setdefault(w, len(first))
    # words most of the group shares come first; rarity (idf) orders words shared alike
    floor = max(1, math.ceil(0.3 * len(word_lists)))
    shared = [w for w in df if df[w] >= floor]
    # the k first of sorting every word: when k words are shared, no other can be among them
    return heapq.nsmallest(k, shared if len(shared) >= k else df,
                           key=lambda w: (df[w] < floor, -(df[w] * (1 + math.log(tf[w])) * math.sqrt(idf(w))),
                                          first[w]))


def _best_place(places: list[Place | None]) -> str | None:
    named = [p for p in places if p is not None]
    if not named:
        return None
    top = max(p.level for p in named)
    counts = Counter(place_key(p.name) for p in named if p.level == top)
    key = max(counts, key=lambda key: counts[key])
    return Counter(p.name for p in named if p.level == top and place_key(p.name) == key).most_common(1)[0][0]


def describe(texts, *, k: int = 3, districts=None, idf=None) -> tuple[str | None, list[str]]:
    """The place and the matter (``k`` keywords) of a group of appeal texts.

    The place is the most specific place named most often (:func:`corpora.places.find_places`);
    keywords are the words held by most texts (weighted by ``idf``, a function of a word,
    when given), leaving out generic appeal wording (``corpora/data/summary_stopwords.txt``)
    and the place names themselves. Both are redacted.

    Examples
    --------
    >>> describe(["幸福里小区停水三天了，水压很低", "幸福里小区又停水了，水压低，电话13812345678",
    ...           "幸福里小区停水，物业不管"])
    ('幸福里小区', ['停水', '三天', '水压'])
    """
    texts = [normalise(t) for t in texts]
    districts = list(districts) if districts is not None else [None] * len(texts)
    matches = [find_places(t, district=d) for t, d in zip(texts, districts)]
    words = [_content_words(tokenize(t), m.places) for t, m in zip(texts, matches)]
    return _describe([m.best for m in matches], words, idf=idf, k=k)


def _describe(bests, words, *, idf=None, k=3):
    place = _best_place(bests)
    idf = idf or (lambda w: 1.0)
    keywords = _rank_words(words, idf, k)
    keywords = [redact(w) for w in keywords if redact(w) == w]  # never a number or plate as a keyword
    return (redact(place) if place else None), keywords


def _summary(place: str | None, keywords: list[str]) -> str:
    matter = "、".join(keywords[:3]) or "同类诉求"
    return redact(f"{place}：{matter}" if place else matter)


def heat_score(*, people: int, size: int, recent: int, earlier: int, days_since_last: float | None,
               urgency: list[str] | None = None, likes: float | None = None) -> float:
    """The heat score (0–100) from its parts; see the module docstring for the formula.

    ``recent``: appeals in the last 7 days; ``earlier``: in the 21 days before those.

    Examples
    --------
    >>> heat_score(people=1, size=1, recent=0, earlier=0, days_since_last=300)
    6.5
    >>> heat_score(people=20, size=30, recent=20, earlier=2, days_since_last=0, likes=100)
    94.3
    """
    parts = {
        "people": 1 - 0.5 ** (people / 5),
        "volume": 1 - 0.5 ** (size / 10),
        "growth": (recent / 7) / (recent / 7 + earlier / 21) if recent else 0.0,
        "recency": 0.5 ** (max(days_since_last, 0.0) / 14) if days_since_last is not None else 0.0,
    }
    graded = [u for u in (urgency or []) if u in _URGENCY_WEIGHT]
    if graded:
        parts["urgency"] = sum(_URGENCY_WEIGHT[u] for u in graded) / len(graded)
    if likes is not None:
        parts["likes"] = 1 - 0.5 ** (max(likes, 0.0) / 20)
    total = sum(HEAT_WEIGHTS[p] for p in parts)
    return round(100 * sum(HEAT_WEIGHTS[p] * v for p, v in parts.items()) / total, 1)


def _to_days(time) -> float | None:
    if time is None or (isinstance(time, float) and math.isnan(time)):
        return None
    try:
        ts = pd.Timestamp(time)
    except (ValueError, TypeError):
        raise ValueError(f"time must be a date and time (ISO 8601 or a datetime), got {redact(str(time))[:30]!r}") \
            from None
    if pd.isna(ts):
        return None
    return ts.value / _DAY_NS


def _iso(days: float | None) -> str | None:
    if days is None:
        return None
    return datetime.fromtimestamp(days * 86400, tz=timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")


def _cosine(a: dict, b: dict) -> float:
    """Cosine of two L2-normalised sparse vectors (dicts word -> weight)."""
    if len(a) > len(b):
        a, b = b, a
    return sum((v * b[w] for w, v in a.items() if w in b), 0.0)  # a missing word would add +0.0


def _share_place(a, b) -> bool:
    """Whether two sets of place keys name one place (equal, or one name inside the other)."""
    return any(x == y or (min(len(x), len(y)) >= 3 and (x in y or y in x)) for x in a for y in b)


def _names_place(text: str, keys) -> bool:
    """Whether ``text`` names one of a group's places verbatim, suffix or not (万科魅力之城 for
    魅力之城小区's group): a name of three characters or more, learnt from the group itself."""
    return any(len(k) >= 3 and k in text for k in keys)


class _Group:
    __slots__ = ("index", "members", "reps", "place_key", "place_keys", "first", "last", "users")

    def __init__(self, index):
        self.index = index
        self.members: list[int] = []
        self.reps: list[int] = []  # appeal indexes; reps[0] is the group's first appeal
        self.place_key: str | None = None
        self.place_keys: set = set()  # every place its representatives name (level road and up)
        self.first: float | None = None
        self.last: float | None = None
        self.users: set = set()


class HotspotGrouper:
    """Incremental same-issue grouping of appeals (hotspots); see the module docstring.

    Parameters
    ----------
    threshold : float
        Jaccard similarity (MinHash estimate) of character shingles at which two texts are
        near-duplicates.
    place_threshold : float
        Lower similarity enough for appeals that name the same place or share a sender.
    matter_threshold : float
        Keyword overlap (share of the smaller set) enough, with the same place or sender.
    window_days : float
        An appeal joins a group only within this many days of the group's appeals.
    shingle_size : int
        Characters per shingle.
    num_perm : int
        MinHash permutations.
    band_rows : int
        Rows per LSH band (``num_perm // band_rows`` bands); fewer rows find more candidates.
    n_representatives : int
        Appeals of a group a newcomer is compared with (the first and the closest to it).
    n_keywords : int
        Keywords kept per appeal for the matter comparison.
    gazetteer : corpora.places.Gazetteer or None
        The city's place names, when it has a list.
    random_state : int
        Seed of the MinHash permutations.

    Examples
    --------
    >>> g = HotspotGrouper()
    >>> a = g.add("1", "2024-06-01 08:00", "幸福里小区停水三天了，水压很低，请尽快处理")
    >>> b = g.add("2", "2024-06-02 09:00", "幸福里小区停水三天了，水压很低，请尽快处理！")
    >>> c = g.add("3", "2024-06-02 10:00", "阳光花园小区停水三天了，水压很低，请尽快处理")
    >>> a == b, a == c
    (True, False)
    >>> g.groups()[0]["summary"]
    '幸福里小区：停水、三天、水压'
    """

    def __init__(self, *, threshold=0.5, place_threshold=0.2, matter_threshold=0.3, place_cosine=0.15,
                 cosine=0.4, window_days=45, place_window_days=180, shingle_size=3, num_perm=128, band_rows=3,
                 n_representatives=5, n_keywords=10, gazetteer=None, random_state=0):
        self.threshold = threshold
        self.place_threshold = place_threshold
        self.matter_threshold = matter_threshold
        self.place_cosine = place_cosine
        self.cosine = cosine
        self.window_days = window_days
        self.place_window_days = place_window_days
        self.shingle_size = shingle_size
        self.num_perm = num_perm
        self.band_rows = band_rows
        self.n_representatives = n_representatives
        self.n_keywords = n_keywords
        self.gazetteer = gazetteer
        self.random_state = random_state

    # --- state -----------------------------------------------------------------------
    def _check_params(self):
        for name in ("threshold", "place_threshold", "matter_threshold", "place_cosine", "cosine"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {v!r}")
        for name in ("window_days", "place_window_days"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name, low in (("shingle_size", 1), ("num_perm", 8), ("band_rows", 1), ("n_representatives", 1),
                          ("n_keywords", 1)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"{name} must be an integer ≥ {low}, got {v!r}")
        if self.band_rows > self.num_perm:
            raise ValueError(f"band_rows must be at most num_perm ({self.num_perm}), got {self.band_rows!r}")

    def _state(self):
        if getattr(self, "_ready", False):
            return
        self._check_params()
        rng = np.random.RandomState(self.random_state)
        self._a = (rng.randint(0, 2**62, size=self.num_perm, dtype=np.int64).astype(np.uint64) << np.uint64(1)) \
            | np.uint64(1)
        self._bands = self.num_perm // self.band_rows
        self._lsh = [dict() for _ in range(self._bands)]
        self._sigs = np.zeros((64, self.num_perm), dtype=np.uint32)
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._time: list[float | None] = []
        self._group: list[int] = []
        self._user: list[str | None] = []
        self._likes: list[float | None] = []
        self._urgency: list[str | None] = []
        self._district: list[str | None] = []
        self._best: list[Place | None] = []
        self._words: list[list[str]] = []
        self._keys: list[frozenset] = []
        self._topics: list[frozenset] = []
        self._text_key: list[str] = []
        self._vecs: list[dict] = []  # word TF-IDF over jieba content words, L2-normalised
        self._by_word: dict[str, list[int]] = {}  # representatives' keywords -> groups
        self._repeat: list[bool] = []
        self._repeat_of: list[list[str]] = []
        self._groups: list[_Group] = []
        self._exact: dict[str, int] = {}
        self._by_place: dict[str, list[int]] = {}
        self._by_user: dict[str, list[int]] = {}
        self._df: Counter = Counter()
        self._seeded: dict[str, int] = {}  # seed(): stored group key -> index
        self._ready = True

    def _idf(self, word: str) -> float:
        return math.log((len(self._ids) + 1) / (self._df[word] + 1)) + 1.0

    # --- MinHash ---------------------------------------------------------------------
    def _signature(self, stripped: str) -> np.ndarray:
        return self._signatures([stripped])[0]

    def _signatures(self, texts: list[str], chunk: int = 8192) -> np.ndarray:
        """MinHash signatures of ``texts`` (each with letters or digits), one row each, in
        vectorised passes over about ``chunk`` shingles at a time."""
        k = self.shingle_size
        out = np.empty((len(texts), self.num_perm), dtype=np.uint32)
        if not texts:
            return out
        # each text's character codes, padded to k when shorter; shingles never cross texts
        padded = [t if len(t) >= k else t + "\x00" * (k - len(t)) for t in texts]
        codes = np.frombuffer("".join(padded).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
        lens = np.fromiter((len(t) for t in padded), dtype=np.int64, count=len(padded))
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        n = len(codes) - k + 1
        x = codes[:n].copy()
        for i in range(1, k):
            x = x * np.uint64(0x110001) + codes[i:i + n]  # exact for k ≤ 3 (21-bit code points)
        x ^= x >> np.uint64(30)
        x *= _MERSENNE_MIX[0]
        x ^= x >> np.uint64(27)
        x *= _MERSENNE_MIX[1]
        x ^= x >> np.uint64(31)
        count = lens - k + 1  # shingles per text: those starting in it and ending in it
        first = np.cumsum(count) - count
        owner = np.repeat(np.arange(len(texts)), count)
        x = x[starts[owner] + np.arange(owner.size) - first[owner]]
        # multiply-shift hashing, h(x) = (a·x mod 2^64) >> 32 with odd a: the shift is monotone,
        # so it is applied to the minimum only (and repeated shingles cannot change a minimum)
        lo = 0
        while lo < len(texts):
            hi = int(np.searchsorted(first, first[lo] + chunk, side="right"))
            hi = max(hi, lo + 1)
            a, b = first[lo], first[hi - 1] + count[hi - 1]
            prod = self._a[:, None] * x[None, a:b]
            out[lo:hi] = (np.minimum.reduceat(prod, first[lo:hi] - a, axis=1) >> np.uint64(32)).T.astype(np.uint32)
            lo = hi
        return out

    def _band_keys(self, sig: np.ndarray):
        r = self.band_rows
        return [sig[i * r:(i + 1) * r].tobytes() for i in range(self._bands)]

    # --- adding ------------------------------------------------------------------------
    def add(self, appeal_id, time, text, district=None, user=None, likes=None, urgency=None, *, _memo=None,
            _days=False) -> str:
        """Add one appeal; return the id of the group it joined or opened.

        Raises ``ValueError`` for an empty text, an id already added or a bad time.
        """
        i, f = self._append(appeal_id, time, text, district, user, likes, urgency, memo=_memo, matter=False,
                            days=_days)
        exact = self._exact.get(f["stripped"])
        chosen, seed_ok = None, False
        if exact is not None:
            chosen = self._groups[exact]
        else:
            chosen, seed_ok = self._choose(i, f["t"], f["sig"], f["band_keys"], f["a_key"], f["conflict_key"],
                                           f["user"], f["keys"], f["topics"], f["vec"], f["places"], f["text"])
        chosen = self._join(i, f, chosen, seed_ok)
        self._mark_repeat(i, f["earlier"], f["text"], f["stripped"], f["user"], f["t"])
        return self._gid(chosen.index)

    def seed(self, appeal_id, time, text, *, group, district=None, user=None, likes=None, urgency=None,
             repeat=False, repeat_of=()) -> str:
        """Add one appeal to the group it was already assigned to, without choosing one.

        For restoring a grouper from stored assignments (the service rebuilds it on start):
        seed the stored appeals in the order they were first added, each with its stored
        group key ``group`` (any string; appeals with the same key share a group) and its
        stored ``repeat`` flag and ``repeat_of`` ids. The group's representatives, place
        and indexes are rebuilt as :meth:`add` built them, so appeals added afterwards
        are grouped as they would have been without the restart. Returns this grouper's
        id of the group (what :meth:`add` returns for appeals joining it later).

        Examples
        --------
        >>> g = HotspotGrouper()
        >>> g.seed("1", "2024-06-01 08:00", "幸福里小区停水三天了，水压很低，请尽快处理", group="g000042")
        'g000001'
        >>> g.add("2", "2024-06-02 09:00", "幸福里小区停水三天了，水压很低，请尽快处理！")
        'g000001'
        """
        self._state()
        group = str(group)
        i, f = self._append(appeal_id, time, text, district, user, likes, urgency)
        index = self._seeded.get(group)
        chosen, seed_ok = None, False
        if index is not None:
            chosen = self._groups[index]
            # as in _choose: a representative when it matches the group's first appeal, not near-identically
            same_place = bool(f["places"] and _share_place(f["places"], chosen.place_keys)) or bool(
                f["a_key"] and chosen.place_key and not _different_places(f["a_key"], chosen.place_key))
            sims = (self._sigs[chosen.reps] == f["sig"]).mean(axis=1)
            seed_ok = self._accepts(float(sims[0]), chosen.reps[0], f["a_key"], f["user"], f["keys"], f["topics"],
                                    same_place, f["vec"]) and float(sims.max()) < 0.9
        chosen = self._join(i, f, chosen, seed_ok)
        self._seeded[group] = chosen.index
        self._repeat.append(bool(repeat))
        self._repeat_of.append([str(x) for x in repeat_of])
        return self._gid(chosen.index)

    def group(self, group_id, until=None) -> dict:
        """One group with all its appeals, as :meth:`groups` describes it (heat as of
        ``until`` or the latest appeal seen); ``KeyError`` for an unknown id."""
        self._state()
        index = int(group_id[1:]) - 1 if isinstance(group_id, str) and group_id[1:].isdigit() else -1
        if not 0 <= index < len(self._groups) or self._gid(index) != group_id:
            raise KeyError(f"group id {group_id!r} is not known")
        g = self._groups[index]
        hi = _to_days(until)
        known = [x for x in self._time if x is not None]
        as_of = hi if hi is not None else (max(known) if known else None)
        members = sorted(g.members, key=lambda j: (self._time[j] is None, self._time[j] or 0.0, j))
        districts = sorted({self._district[j] for j in members if self._district[j]})
        return self._describe_group(g, members, districts, as_of)

    def _text_features(self, raw: str, district: str | None, memo: dict | None = None,
                       normalised: tuple[str, str] | None = None, sig: np.ndarray | None = None) -> _TextFeatures:
        """What an appeal's text and district alone decide: the same for every appeal with
        that text and district, so :meth:`add_frame` computes it once per distinct pair, and
        the part of it the text alone decides once per distinct text (``memo``, keyed by
        text). ``normalised``: (text, stripped) when already known; ``sig``: its signature."""
        base = memo.get(raw) if memo is not None else None
        if base is None:
            text, stripped = normalised if normalised is not None else _normalised(raw)
            if not stripped:
                base = (text, stripped)
            else:
                match = find_places(text[:PLACE_CHARS], gazetteer=self.gazetteer, normalised=True)
                words = _content_words(tokenize(text), match.places)
                sig = self._signature(stripped) if sig is None else sig
                places = frozenset(k for k in (place_key(p.name) for p in match.places if p.level >= LEVELS["road"])
                                   if k)
                base = (text, stripped, match, words, Counter(words), set(words), places, _topics_of(text), sig,
                        self._band_keys(sig))
            if memo is not None:
                memo[raw] = base
        if len(base) == 2:
            return _TextFeatures(*base, *(None,) * 11)
        text, stripped, match, words, counts, wordset, places, topics, sig, band_keys = base
        # find_places(text, district=district), from the places the text names: the given
        # district is the appeal's district, and its best place when the text names none
        given = normalise(district) if district else None
        best = match.best if match.places else (Place(given, "district", LEVELS["district"], -1, -1) if given else None)
        named = best.name if best is not None and best.level >= LEVELS["road"] else None
        conflict_key = place_key(best.name) if best is not None and best.level == LEVELS["place"] else None
        return _TextFeatures(text, stripped, best, given or match.district, place_key(named), conflict_key, words,
                             counts, wordset, places, topics, sig, band_keys)

    def _append(self, appeal_id, time, text, district, user, likes, urgency, memo=None, matter=True, days=False):
        """Check one appeal, compute its features and append them; (its index, the features).
        ``memo``: a dict of text features already computed (:meth:`add_frame`), keyed by
        (text, district). ``matter=False``: an exact re-post of an appeal already grouped,
        which joins its original's group and is never a representative, so its keywords and
        word vector, only ever read of representatives, are not computed."""
        self._state()
        appeal_id = str(appeal_id)
        if appeal_id in self._pos:
            raise ValueError(f"appeal id {appeal_id!r} was already added")
        raw = text if isinstance(text, str) else ("" if text is None else str(text))
        tf = memo.get((raw, district)) if memo is not None and isinstance(district, (str, type(None))) else None
        if tf is None:
            district = None if _missing(district) else normalise(str(district)) or None
            tf = self._text_features(raw, district, memo)
        text, stripped = tf.text, tf.stripped
        if not stripped:
            raise ValueError(f"appeal {appeal_id!r}: text is empty (no letters or digits)")
        t = _to_days(time) if days is False else days  # add_frame knows it already
        user = None if _missing(user) else str(user)
        likes = None if _missing(likes) else float(likes)
        urgency = None if _missing(urgency) else str(urgency)

        best, a_key, conflict_key, words, counts = tf.best, tf.a_key, tf.conflict_key, tf.words, tf.counts
        keys = vec = None
        if matter or stripped not in self._exact:
            n1, df = len(self._ids) + 1, self._df
            ranked = sorted(counts, key=lambda w: -counts[w] * (math.log(n1 / (df[w] + 1)) + 1.0))[:self.n_keywords]
            keys = frozenset(ranked)
            # the matter: word TF-IDF (sublinear tf; idf from the appeals seen so far), L2-normalised
            vec = {w: (1.0 + math.log(c)) * math.log((n1 + _IDF_PRIOR) / (df[w] + 1)) for w, c in counts.items()}
            norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
            vec = {w: v / norm for w, v in vec.items() if v > 0}
        places, topics, sig = tf.places, tf.topics, tf.sig

        i = len(self._ids)
        if i == len(self._sigs):
            self._sigs = np.concatenate([self._sigs, np.zeros_like(self._sigs)])
        self._sigs[i] = sig
        self._ids.append(appeal_id)
        self._pos[appeal_id] = i
        self._time.append(t)
        self._user.append(user)
        self._likes.append(likes)
        self._urgency.append(urgency)
        self._district.append(tf.district)
        self._best.append(best)
        self._words.append(words)
        self._keys.append(keys)
        self._topics.append(topics)
        self._text_key.append(stripped)
        self._vecs.append(vec)
        self._df.update(tf.wordset)
        return i, {"text": text, "stripped": stripped, "t": t, "user": user, "a_key": a_key,
                   "conflict_key": conflict_key, "keys": keys, "topics": topics, "sig": sig,
                   "band_keys": tf.band_keys, "vec": vec, "places": places}

    def _join(self, i, f, chosen, seed_ok) -> _Group:
        """Put appeal ``i`` (features ``f``) into group ``chosen``, or a new group when None."""
        stripped, t, user = f["stripped"], f["t"], f["user"]
        if chosen is None:
            chosen = _Group(len(self._groups))
            chosen.place_key = f["conflict_key"] or f["a_key"]
            self._groups.append(chosen)
            seed_ok = True
            if chosen.place_key:
                self._by_place.setdefault(chosen.place_key, []).append(chosen.index)
        self._exact.setdefault(stripped, chosen.index)
        f["earlier"] = list(chosen.members)
        chosen.members.append(i)
        if seed_ok and len(chosen.reps) < self.n_representatives:
            chosen.reps.append(i)
            for band, key in zip(self._lsh, f["band_keys"]):
                band.setdefault(key, []).append(i)
            for key in f.get("places", ()):
                if key not in chosen.place_keys:
                    chosen.place_keys.add(key)
                    if key != chosen.place_key:
                        self._by_place.setdefault(key, []).append(chosen.index)
            for word in f["keys"]:
                self._by_word.setdefault(word, []).append(chosen.index)
        if t is not None:
            chosen.first = t if chosen.first is None else min(chosen.first, t)
            chosen.last = t if chosen.last is None else max(chosen.last, t)
        if user is not None and user not in chosen.users:
            chosen.users.add(user)
            self._by_user.setdefault(user, []).append(chosen.index)
        self._group.append(chosen.index)
        return chosen

    def _active(self, g: _Group, t: float | None, days: float | None = None) -> bool:
        if t is None or g.first is None:
            return True
        days = self.window_days if days is None else days
        return g.first - days <= t <= g.last + days

    def _accepts(self, sim, j, a_key, user, keys, topics, same_place, vec=None, cos=None) -> bool:
        if sim >= self.threshold:
            return True
        if vec is not None:  # the matter, word TF-IDF cosine: same place and a shared matter, or the same matter
            c = _cosine(vec, self._vecs[j]) if cos is None else cos
            if c >= self.cosine or (same_place and c >= self.place_cosine):
                return True
        if not (same_place or (user is not None and self._user[j] == user)):
            return False
        if sim >= self.place_threshold or (same_place and topics & self._topics[j]):
            return True
        other = self._keys[j]
        shared = len(keys & other)
        return shared >= 2 and shared >= self.matter_threshold * min(len(keys), len(other))

    def _choose(self, i, t, sig, band_keys, a_key, conflict_key, user, keys, topics, vec=None, places=frozenset(),
                text=None):
        cand: set[int] = set()
        for band, key in zip(self._lsh, band_keys):
            for j in band.get(key, ()):
                cand.add(self._group[j])
        for key in places | ({a_key} if a_key else set()):
            cand.update(self._by_place.get(key, ()))
        if user is not None:
            cand.update(self._by_user.get(user, ()))
        if vec is not None:  # groups whose representatives share two keywords or more
            shared = Counter(gi for w in keys for gi in set(self._by_word.get(w, ())))
            cand.update(gi for gi, n in shared.items() if n >= 2)
        best, best_score, best_seed = None, -1.0, False
        head = text[:PLACE_CHARS] if text else ""
        for gi in cand:
            g = self._groups[gi]
            same_place = bool(places and _share_place(places, g.place_keys)) or \
                bool(a_key and g.place_key and not _different_places(a_key, g.place_key)) or \
                _names_place(head, g.place_keys)
            same_user = user is not None and user in g.users
            # a sender writing again about their own place follows up, however long after
            if not self._active(g, t) and not (same_place and (same_user or self._active(g, t, self.place_window_days))):
                continue
            if conflict_key and g.place_key and _different_places(conflict_key, g.place_key) and not same_place:
                continue
            sims = (self._sigs[g.reps] == sig).mean(axis=1)
            # each representative's cosine once (the test and the score both read it)
            coss = [_cosine(vec, self._vecs[j]) for j in g.reps] if vec is not None else [None] * len(g.reps)
            ok = [self._accepts(float(s), j, a_key, user, keys, topics, same_place, vec, c)
                  for s, j, c in zip(sims, g.reps, coss)]
            if not any(ok):
                continue
            cos = max(coss) if vec is not None else 0.0
            score = float(sims.max()) + cos + 0.5 * same_place + 0.25 * same_user
            if score > best_score:
                best, best_score, best_seed = g, score, ok[0] and float(sims.max()) < 0.9
        return best, best_seed

    def _mark_repeat(self, i, earlier, text, stripped, user, t):
        same_sender = [j for j in earlier if user is not None and self._user[j] == user]
        reposts = [j for j in earlier if self._text_key[j] == stripped
                   and (user is None or self._user[j] is None or self._user[j] == user)]
        cue = bool(_repeat_cues().search(text))
        linked = same_sender or reposts or (earlier[-5:] if cue else [])
        if t is not None:  # only appeals before this one are "earlier"
            linked = [j for j in linked if self._time[j] is None or self._time[j] <= t]
        self._repeat.append(bool(same_sender or reposts or cue))
        self._repeat_of.append([self._ids[j] for j in linked])

    def add_frame(self, frame: pd.DataFrame, progress: bool = True, *, _memo: dict | None = None) -> np.ndarray:
        """Add every row of ``frame`` (columns ``id``, ``time``, ``text`` and optionally
        ``district``, ``user``, ``likes``, ``urgency``) in time order; return each row's group id.

        Rows without a time come last, in their order. Without an ``id`` column the row
        position is the id.
        """
        from tqdm.auto import tqdm

        if "text" not in frame.columns:
            raise ValueError(f"frame needs a 'text' column; it has {list(frame.columns)}")
        n = len(frame)
        ids = frame["id"].astype(str).tolist() if "id" in frame.columns else [str(k) for k in range(n)]
        times = frame["time"].tolist() if "time" in frame.columns else [None] * n
        if "time" in frame.columns and n and pd.api.types.is_datetime64_dtype(frame["time"].dtype) \
                and getattr(frame["time"].dtype, "tz", None) is None:  # _to_days of each, vectorised
            ns = frame["time"].to_numpy(dtype="datetime64[ns]").view(np.int64)
            days = [None if v == np.iinfo(np.int64).min else v / _DAY_NS for v in ns.tolist()]
        else:
            days = [_to_days(x) for x in times]
        order = sorted(range(n), key=lambda k: (days[k] is None, days[k] if days[k] is not None else 0.0, k))
        cols = {c: (frame[c].tolist() if c in frame.columns else [None] * n)
                for c in ("district", "user", "likes", "urgency")}
        texts = frame["text"].tolist()
        memo = self._features_of(texts, cols["district"], _memo)
        out = np.empty(n, dtype=object)
        for k in tqdm(order, total=n, desc="grouping", unit="appeal", disable=not progress):
            out[k] = self.add(ids[k], times[k], texts[k], district=cols["district"][k], user=cols["user"][k],
                              likes=cols["likes"][k], urgency=cols["urgency"][k], _memo=memo, _days=days[k])
        return out

    def _features_of(self, texts: list, districts: list, memo: dict | None = None) -> dict:
        """The text features of each distinct (text, district) of a batch, keyed as
        ``_append`` looks them up: each text normalised once, signatures in one
        vectorised pass (appeals repeat: re-posts, templates, one text sent by many).
        ``memo``: features computed already (by another process of the same parameters:
        they depend on nothing else), completed and returned."""
        self._state()
        memo = {} if memo is None else memo
        raws = [t if isinstance(t, str) else ("" if t is None else str(t)) for t in texts]
        norm: dict[str, tuple[str, str]] = {}
        for raw in raws:
            if raw not in norm and raw not in memo:
                norm[raw] = _normalised(raw)
        distinct = list(dict.fromkeys(st for _, st in norm.values() if st))
        sigs = dict(zip(distinct, self._signatures(distinct)))
        # (text, district as given) -> features; text -> what the text alone decides
        clean: dict = {}
        for raw, d in zip(raws, districts):
            if not isinstance(d, (str, type(None))) or (raw, d) in memo:
                continue  # (a district that is not a string is looked up as _append gets it)
            if d not in clean:
                clean[d] = None if _missing(d) else normalise(str(d)) or None
            got = norm.get(raw)
            memo[(raw, d)] = self._text_features(raw, clean[d], memo, normalised=got,
                                                 sig=sigs.get(got[1]) if got else None)
        return memo

    # --- reading -------------------------------------------------------------------------
    @staticmethod
    def _gid(index: int) -> str:
        return f"g{index + 1:06d}"

    def group_of(self, appeal_id) -> str:
        """The group id of an appeal already added (``KeyError`` for an unknown id)."""
        self._state()
        i = self._pos.get(str(appeal_id))
        if i is None:
            raise KeyError(f"appeal id {appeal_id!r} has not been added")
        return self._gid(self._group[i])

    def appeal(self, appeal_id) -> dict:
        """An appeal's group, place and repeat flag: ``group_id, place, repeat, repeat_of``."""
        gid = self.group_of(appeal_id)
        i = self._pos[str(appeal_id)]
        best = self._best[i]
        return {"group_id": gid, "place": redact(best.name) if best else None, "repeat": self._repeat[i],
                "repeat_of": list(self._repeat_of[i])}

    def groups(self, since=None, until=None, district=None, min_size=2) -> list[dict]:
        """Groups of at least ``min_size`` appeals received in [``since``, ``until``]
        (appeals outside it are not counted), with at least one appeal in ``district`` when
        given; hottest first.

        Each: ``group_id, appeal_ids, size, people, place, first_time, last_time, heat,
        summary`` (redacted), ``keywords``, ``districts``, ``repeats``.
        """
        self._state()
        lo = _to_days(since)
        hi = _to_days(until)
        if hi is not None and isinstance(until, str) and len(until.strip()) <= 10:
            hi += 1 - 1e-9  # a date means its whole day
        want = normalise(district) if district else None
        known = [x for x in self._time if x is not None]
        as_of = hi if hi is not None else (max(known) if known else None)
        idf = lru_cache(maxsize=None)(self._idf)  # the grouper does not change while its groups are described
        out = []
        for g in self._groups:
            members = [j for j in g.members
                       if (lo is None or (self._time[j] is not None and self._time[j] >= lo))
                       and (hi is None or (self._time[j] is not None and self._time[j] <= hi))]
            if len(members) < min_size:
                continue
            districts = sorted({self._district[j] for j in members if self._district[j]})
            if want is not None and want not in districts:
                continue
            members.sort(key=lambda j: (self._time[j] is None, self._time[j] or 0.0, j))
            out.append(self._describe_group(g, members, districts, as_of, idf=idf))
        out.sort(key=lambda r: (-r["heat"], r["group_id"]))
        return out

    def _describe_group(self, g, members, districts, as_of, idf=None):
        times = [self._time[j] for j in members if self._time[j] is not None]
        people = len({self._user[j] if self._user[j] is not None else "\x00" + self._text_key[j] for j in members})
        place, keywords = _describe([self._best[j] for j in members], [self._words[j] for j in members],
                                    idf=idf or self._idf, k=3)
        if as_of is not None and times:
            recent = sum(1 for x in times if as_of - 7 < x <= as_of)
            earlier = sum(1 for x in times if as_of - 28 < x <= as_of - 7)
            since_last = as_of - max(times)
        else:
            recent, earlier, since_last = 0, 0, None
        likes = [self._likes[j] for j in members if self._likes[j] is not None]
        heat = heat_score(people=people, size=len(members), recent=recent, earlier=earlier,
                          days_since_last=since_last, urgency=[self._urgency[j] for j in members if self._urgency[j]],
                          likes=sum(likes) if likes else None)
        return {
            "group_id": self._gid(g.index),
            "appeal_ids": [self._ids[j] for j in members],
            "size": len(members),
            "people": people,
            "place": place,
            "first_time": _iso(min(times)) if times else None,
            "last_time": _iso(max(times)) if times else None,
            "heat": heat,
            "summary": _summary(place, keywords),
            "keywords": keywords,
            "districts": [redact(d) for d in districts],
            "repeats": [{"id": self._ids[j], "repeat_of": self._repeat_of[j]} for j in members if self._repeat[j]],
        }


def _different_places(a: str, b: str) -> bool:
    return a != b and a not in b and b not in a


def _missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()
