"""Labelled pairs of real appeals for hotspot (same-issue) grouping: sampling, loading, scoring.

A *pair* is two appeals from the real message-board corpus in ``../shared/corpora``. It is
labelled 1 (SAME) when both are about the same concrete matter at the same place or object
(the same 小区 / road / company / project and the same problem), re-posts and follow-ups
included, and 0 (DIFFERENT) otherwise: the same kind of problem elsewhere, or the same place
with another problem. ``docs/hotspot-pairs.md`` gives the rule, the sampling and the counts.

The label file ``corpora/eval/hotspot_pairs.csv`` holds file names and ids only
(``source_a,id_a,source_b,id_b,label,reason``); texts are read back from ``../shared`` by
:func:`load_pairs`. ``corpora/eval/hotspot_candidates.csv`` holds every sampled candidate
with the band it came from (labelled or dropped).

Commands::

    python -m training.hotspot_pairs candidates   # re-draw the candidates (seeded) and print counts
    python -m training.hotspot_pairs              # evaluate HotspotGrouper (when present) and the
                                                  # reference methods; writes var/hotspot_pairs.json
    python -m training.hotspot_pairs --no-stream --half tune      # only the tune half (split_halves);
                                                                  # --half heldout: the figure to trust

Scoring: a grouping puts a pair in one group or not. Pairwise precision is the share of the
labelled pairs predicted together that are labelled SAME; recall is the share of the SAME
pairs predicted together; both with Wilson 95% intervals. Two settings: the *pairs* frame
(only the appeals of the labelled pairs, grouped on their own) and the *stream* (every
appeal of the three files grouped in time order, then the labelled pairs looked up) — a
grouping can behave differently on a small frame than on the whole stream.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time as _time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from corpora.records import appeal_texts, read_appeals

log = logging.getLogger(__name__)

__all__ = ["ROOT", "SHARED", "SOURCES", "PAIRS_FILE", "CANDIDATES_FILE", "REASONS", "shared_available",
           "load_sources", "load_pairs", "pair_frame", "stream_frame", "pairwise_scores", "evaluate",
           "jaccard_groups", "tfidf_groups", "sample_candidates", "extract_district", "HALVES", "split_halves",
           "select_half"]

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora" / "tipdm2020c"
SOURCES = ("appeals_labelled_dev.csv", "appeals_unlabelled_hot.csv", "appeals_with_replies.csv")
_TAG = {"appeals_labelled_dev.csv": "D", "appeals_unlabelled_hot.csv": "H", "appeals_with_replies.csv": "R"}
PAIRS_FILE = ROOT / "corpora" / "eval" / "hotspot_pairs.csv"
CANDIDATES_FILE = ROOT / "corpora" / "eval" / "hotspot_candidates.csv"
REPORT_FILE = ROOT / "var" / "hotspot_pairs.json"
SEED = 14
REASONS = {
    1: ("repost", "same_place_same_problem", "follow_up"),
    0: ("same_problem_other_place", "same_place_other_problem", "same_topic_other_matter", "unrelated"),
}

# Districts and counties as the publisher anonymised them (A1–A9区 in A市; B–N市/县).
_DISTRICT = re.compile(r"(A\d{1,2}区|[B-N]\d{0,2}[市县])")


def extract_district(text: str | None) -> str | None:
    """The first district or county named in ``text`` (A市 itself is not a district).

    >>> extract_district("位于A市A3区某某路的小区")
    'A3区'
    >>> extract_district("K8县某镇") , extract_district("A市政府") is None
    ('K8县', True)
    """
    if not text:
        return None
    m = _DISTRICT.search(text)
    return m.group(1) if m else None


def shared_available() -> bool:
    return all((SHARED / s).exists() for s in SOURCES)


_CACHE: dict[str, pd.DataFrame] = {}


def load_sources() -> dict[str, pd.DataFrame]:
    """The three real files as canonical frames keyed by file name (read once per process).

    Each frame gains ``uid`` (``D:``/``H:``/``R:`` + id, unique over the three files),
    ``joined`` (title and text, as the models read them) and ``district`` (given, or the
    first district named in the title or text).
    """
    if not shared_available():
        raise FileNotFoundError(f"{SHARED}: the real corpus is not here")
    if not _CACHE:
        for src in SOURCES:
            fr = read_appeals(SHARED / src).frame.copy()
            fr["source"] = src
            fr["uid"] = _TAG[src] + ":" + fr["id"].astype(str)
            fr["joined"] = appeal_texts(fr)
            given = fr["district"] if "district" in fr.columns else pd.Series([None] * len(fr))
            fr["district"] = [g or extract_district(t) for g, t in zip(given, fr["joined"])]
            _CACHE[src] = fr.reset_index(drop=True)
    return _CACHE


# ---------------------------------------------------------------------------------------
# Candidate sampling (deterministic). Uses only generic similarity, never the grouper.

_NOT_WORD = re.compile(r"[\W_]+")
_PLACE = re.compile(r"([\u4e00-\u9fa5A-Za-z0-9]{2,10}?(?:小区|花园|家园|公寓|新村|社区|苑|广场|大厦|中学|小学|"
                    r"幼儿园|学校|学院|医院|村|路|大道|公司|项目))")
_PLACE_PREFIX = re.compile(r"^.*?(?:[市区县镇乡]|街道|位于|关于|反映|投诉|举报|咨询|我是|我们|请问)")
BANDS = {  # band: target number of pairs (drawn in this order; a later band never changes an earlier one)
    "repost": 40, "high": 110, "mid": 120, "place": 90, "low_same_category": 50, "random": 40,
    "same_problem_word": 130}
# Problem words for the ``same_problem_word`` band (hard negatives: one kind of problem, many places).
PROBLEM_WORDS = ("搅拌站", "油烟", "噪音", "违建", "停水", "电梯", "捆绑", "学位", "补课", "拖欠工资", "物业费",
                 "垃圾站", "基站", "变电站", "高压线", "广场舞", "渣土车", "烂尾", "房产证", "路灯", "拆迁",
                 "非法集资", "幼儿园", "采石场", "污水", "停车位", "漏水", "占道", "夜宵", "扬尘", "入学")


def _places(text: str) -> set[str]:
    out = set()
    for m in _PLACE.findall(text):
        m = _PLACE_PREFIX.sub("", m)
        if len(m) >= 4 and not re.fullmatch(r"[A-Za-z0-9]+.*", m[:2]):
            out.add(m)
    return out


def _all_appeals() -> pd.DataFrame:
    return pd.concat(list(load_sources().values()), ignore_index=True)


def sample_candidates(seed: int = SEED, bands: dict[str, int] | None = None) -> pd.DataFrame:
    """Draw candidate pairs in similarity bands; returns ``source_a,id_a,source_b,id_b,band,cosine``.

    Bands (character 3-gram TF-IDF cosine over title + text of all 12,866 appeals):
    ``repost`` — identical texts once case, spaces and punctuation are dropped;
    ``high`` ≥ 0.6; ``mid`` 0.3–0.6; ``low_same_category`` 0.15–0.3 within one gold category
    (labelled file only); ``place`` — sharing a rare place string (a 小区 / road / school /
    company name found in 2–15 appeals) at cosine < 0.6; ``random``; ``same_problem_word`` —
    both name one of :data:`PROBLEM_WORDS`, share no rare character 4-gram (one found in ≤ 20
    appeals: a place or company name), cosine 0.04–0.45. A pair is drawn once;
    an appeal is used in at most two pairs, so that big re-post clusters do not dominate.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    bands = bands or BANDS
    rng = np.random.default_rng(seed)
    allx = _all_appeals()
    texts = allx["joined"].tolist()
    n = len(texts)
    X = TfidfVectorizer(analyzer="char", ngram_range=(3, 3), sublinear_tf=True).fit_transform(texts)
    cat = allx["category"].to_numpy(dtype=object)
    pairs: dict[str, list[tuple[int, int, float]]] = {b: [] for b in bands}
    for start in range(0, n, 1000):
        sims = (X[start:start + 1000] @ X.T).tocoo()
        i, j, v = sims.row + start, sims.col, sims.data
        keep = (i < j) & (v >= 0.15)
        i, j, v = i[keep], j[keep], v[keep]
        hi = v >= 0.6
        pairs["high"] += list(zip(i[hi].tolist(), j[hi].tolist(), v[hi].tolist()))
        mid = (v >= 0.3) & ~hi
        pairs["mid"] += list(zip(i[mid].tolist(), j[mid].tolist(), v[mid].tolist()))
        low = (v < 0.3)
        same_cat = np.array([cat[a] is not None and cat[a] == cat[b] for a, b in zip(i[low], j[low])], dtype=bool)
        li, lj, lv = i[low][same_cat], j[low][same_cat], v[low][same_cat]
        if len(li) > 4000:  # thin the (many) low pairs per block before the global draw
            pick = rng.choice(len(li), 4000, replace=False)
            li, lj, lv = li[pick], lj[pick], lv[pick]
        pairs["low_same_category"] += list(zip(li.tolist(), lj.tolist(), lv.tolist()))

    def cos(a: int, b: int) -> float:
        return float((X[a] @ X[b].T).toarray()[0, 0])

    stripped = [_NOT_WORD.sub("", t.lower()) for t in allx["text"].astype(str)]
    by_text: dict[str, list[int]] = {}
    for k, s in enumerate(stripped):
        if len(s) >= 10:
            by_text.setdefault(s, []).append(k)
    for members in by_text.values():
        for a_i in range(len(members)):
            for b_i in range(a_i + 1, len(members)):
                a, b = members[a_i], members[b_i]
                pairs["repost"].append((a, b, cos(a, b)))

    places: dict[str, list[int]] = {}
    for k, t in enumerate(texts):
        for p in _places(t):
            places.setdefault(p, []).append(k)
    for p in sorted(places):
        members = places[p]
        if 2 <= len(members) <= 15:
            for a_i in range(len(members)):
                for b_i in range(a_i + 1, len(members)):
                    a, b = members[a_i], members[b_i]
                    c = cos(a, b)
                    if c < 0.6:
                        pairs["place"].append((a, b, c))

    # Same problem word, no shared rare 4-gram, cosine 0.04-0.45: mostly the same kind of
    # problem somewhere else (the hard negatives a hotspot grouper must keep apart).
    # "Share no place" = share no rare character 4-gram (in ≤ 20 appeals): names of 小区,
    # companies and roads are rare 4-grams; the place patterns above miss many of them.
    from sklearn.feature_extraction.text import CountVectorizer
    rare = CountVectorizer(analyzer="char", ngram_range=(4, 4), binary=True, max_df=20).fit_transform(texts)
    for word in PROBLEM_WORDS:
        members = np.array([k for k, t in enumerate(texts) if word in t])
        if len(members) < 2:
            continue
        S = (X[members] @ X[members].T).toarray()
        shared = (rare[members] @ rare[members].T).toarray() > 0
        ii, jj = np.nonzero(np.triu((S >= 0.04) & (S < 0.45) & ~shared, 1))
        for a_i, b_i in zip(ii.tolist(), jj.tolist()):
            pairs["same_problem_word"].append((int(members[a_i]), int(members[b_i]), float(S[a_i, b_i])))

    for _ in range(bands["random"] * 3):
        a, b = sorted(rng.choice(n, 2, replace=False).tolist())
        pairs["random"].append((a, b, cos(a, b)))

    used: dict[int, int] = {}
    seen: set[tuple[int, int]] = set()
    rows = []
    for band, target in bands.items():
        cand = sorted(set((min(a, b), max(a, b), round(c, 4)) for a, b, c in pairs[band]))
        order = rng.permutation(len(cand))
        taken = 0
        for k in order:
            a, b, c = cand[k]
            if taken >= target:
                break
            if (a, b) in seen or used.get(a, 0) >= 2 or used.get(b, 0) >= 2:
                continue
            seen.add((a, b))
            used[a] = used.get(a, 0) + 1
            used[b] = used.get(b, 0) + 1
            taken += 1
            rows.append({"source_a": allx.at[a, "source"], "id_a": allx.at[a, "id"],
                         "source_b": allx.at[b, "source"], "id_b": allx.at[b, "id"],
                         "band": band, "cosine": round(c, 3)})
        log.info("band %s: %d eligible pairs, %d drawn", band, len(cand), taken)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------
# Loading the labelled pairs back

def load_pairs(path: Path | str = PAIRS_FILE) -> pd.DataFrame:
    """The labelled pairs with ``uid_a, uid_b`` and each side's ``text_a/b``, ``time_a/b``,
    ``district_a/b``, ``user_a/b`` resolved from ``../shared``.

    Raises FileNotFoundError when ``../shared`` is absent (callers skip) and KeyError when
    an id no longer resolves (the shared file changed).
    """
    pairs = pd.read_csv(path, dtype={"id_a": str, "id_b": str})
    src = load_sources()
    index = {s: fr.set_index("id") for s, fr in src.items()}
    for side in ("a", "b"):
        missing = [(s, i) for s, i in zip(pairs[f"source_{side}"], pairs[f"id_{side}"])
                   if s not in index or i not in index[s].index]
        if missing:
            raise KeyError(f"{len(missing)} ids do not resolve in {SHARED}, e.g. {missing[:3]}")
        rec = [index[s].loc[i] for s, i in zip(pairs[f"source_{side}"], pairs[f"id_{side}"])]
        pairs[f"uid_{side}"] = [r["uid"] for r in rec]
        for col, name in (("joined", "text"), ("time", "time"), ("district", "district"), ("user", "user")):
            pairs[f"{name}_{side}"] = [r[col] for r in rec]
    return pairs


def _frame_of(records: pd.DataFrame) -> pd.DataFrame:
    """The frame a grouper sees: ``id`` (unique over the files), ``time``, ``text`` (title
    joined), ``district``, ``user``; in time order, appeals without a time last."""
    fr = pd.DataFrame({"id": records["uid"].to_numpy(), "time": records["time"].to_numpy(),
                       "text": records["joined"].to_numpy(), "district": records["district"].to_numpy(),
                       "user": records["user"].to_numpy()})
    fr["_t"] = pd.to_datetime(fr["time"], errors="coerce")
    fr = fr.sort_values("_t", kind="stable", na_position="last").drop(columns="_t").reset_index(drop=True)
    return fr.astype(object).where(fr.notna(), None)


def pair_frame(pairs: pd.DataFrame) -> pd.DataFrame:
    """Every appeal named in ``pairs`` once, as a grouper frame."""
    allx = _all_appeals().set_index("uid")
    uids = pd.unique(np.concatenate([pairs["uid_a"].to_numpy(), pairs["uid_b"].to_numpy()]))
    return _frame_of(allx.loc[uids].reset_index())


def stream_frame() -> pd.DataFrame:
    """All appeals of the three files (12,866) as one grouper frame, in time order."""
    return _frame_of(_all_appeals())


# ---------------------------------------------------------------------------------------
# Tune / held-out halves

HALVES = ("tune", "heldout", "all")


def split_halves(pairs: pd.DataFrame) -> np.ndarray:
    """``"tune"`` or ``"heldout"`` for each labelled pair, deterministically, so that no
    campaign has pairs on both sides.

    Appeals are linked when they form a labelled pair (SAME or DIFFERENT, so a pair never
    straddles the halves), share a place string (:func:`_places`, the sampler's own regex,
    independent of the grouper being tuned) or have the same text once case, spaces and
    punctuation are dropped. Connected components of these links go whole to one half:
    largest first (ties: SHA-1 of the component's sorted ids), each to the half holding
    fewer pairs so far (ties: tune). Tune on ``tune`` only; the ``heldout`` figure is the
    one to trust.
    """
    import hashlib

    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    uids = pd.unique(np.concatenate([pairs["uid_a"].to_numpy(), pairs["uid_b"].to_numpy()]))
    index = {u: k for k, u in enumerate(uids)}
    texts: dict[str, str] = {}
    for side in ("a", "b"):
        texts.update(zip(pairs[f"uid_{side}"], pairs[f"text_{side}"].astype(str)))
    rows = [index[a] for a in pairs["uid_a"]]
    cols = [index[b] for b in pairs["uid_b"]]
    shared: dict[str, list[int]] = {}
    for u in uids:
        for key in _places(texts[u]) | {"\x00" + _NOT_WORD.sub("", texts[u].lower())}:
            shared.setdefault(key, []).append(index[u])
    for members in shared.values():
        rows += [members[0]] * (len(members) - 1)
        cols += members[1:]
    n = len(uids)
    _, comp = connected_components(coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)), directed=False)
    pair_comp = comp[[index[a] for a in pairs["uid_a"]]]
    sizes = pd.Series(pair_comp).value_counts()
    ids_of = pd.Series(uids).groupby(comp).apply(lambda s: "\n".join(sorted(s)))
    order = sorted(sizes.index, key=lambda c: (-sizes[c], hashlib.sha1(ids_of[c].encode()).hexdigest()))
    half_of, count = {}, {"tune": 0, "heldout": 0}
    for c in order:
        half = "tune" if count["tune"] <= count["heldout"] else "heldout"
        half_of[c] = half
        count[half] += int(sizes[c])
    return np.array([half_of[c] for c in pair_comp], dtype=object)


def select_half(pairs: pd.DataFrame, half: str) -> pd.DataFrame:
    """The labelled pairs of one half (``tune``, ``heldout``) or ``all`` of them."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {HALVES}, got {half!r}")
    if half == "all":
        return pairs
    return pairs[split_halves(pairs) == half].reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# Scoring

def _wilson(k: int, n: int):
    from models.urgency import wilson
    return wilson(k, n)


def pairwise_scores(labels, together) -> dict:
    """Pairwise precision / recall / F1 of predictions ``together`` against ``labels`` (1 = SAME).

    >>> s = pairwise_scores([1, 1, 0, 0], [True, False, True, False])
    >>> s["precision"], s["recall"], s["predicted_same"]
    (0.5, 0.5, 2)
    """
    y = np.asarray(labels, dtype=int) == 1
    p = np.asarray(together, dtype=bool)
    tp, fp, fn = int((y & p).sum()), int((~y & p).sum()), int((y & ~p).sum())
    prec = tp / (tp + fp) if tp + fp else None
    rec = tp / (tp + fn) if tp + fn else None
    f1 = 2 * prec * rec / (prec + rec) if prec and rec else 0.0
    return {"precision": None if prec is None else round(prec, 4), "precision_ci95": _wilson(tp, tp + fp),
            "recall": None if rec is None else round(rec, 4), "recall_ci95": _wilson(tp, tp + fn),
            "f1": round(f1, 4), "pairs": int(len(y)), "same": int(y.sum()), "predicted_same": tp + fp,
            "tp": tp, "fp": fp, "fn": fn}


def _score(pairs: pd.DataFrame, frame: pd.DataFrame, group_fn: Callable) -> dict:
    t0 = _time.perf_counter()
    groups = np.asarray(group_fn(frame))
    seconds = _time.perf_counter() - t0
    if len(groups) != len(frame):
        raise ValueError(f"group_fn returned {len(groups)} ids for {len(frame)} rows")
    gid = dict(zip(frame["id"], groups.tolist()))
    together = [gid[a] == gid[b] for a, b in zip(pairs["uid_a"], pairs["uid_b"])]
    out = pairwise_scores(pairs["label"], together)
    out["seconds"] = round(seconds, 2)
    out["appeals"] = int(len(frame))
    out["by_reason_predicted_same"] = {
        r: f"{int(np.sum(np.asarray(together)[(pairs['reason'] == r).to_numpy()]))}/{int((pairs['reason'] == r).sum())}"
        for r in sorted(pairs["reason"].unique())}
    return out


def evaluate(group_fn: Callable[[pd.DataFrame], np.ndarray], *, stream: bool = False,
             pairs: pd.DataFrame | None = None, half: str = "all") -> dict:
    """Score ``group_fn(frame) -> group id per row`` on the labelled pairs.

    ``stream=False``: the frame holds only the appeals of the labelled pairs. ``stream=True``:
    the frame is every appeal of the three files, grouped at once, then the pairs looked up.
    Frames carry ``id, time, text, district, user`` in time order (see :func:`_frame_of`).
    ``half``: score only the ``tune`` or ``heldout`` pairs (:func:`split_halves`), or ``all``.
    """
    pairs = select_half(load_pairs() if pairs is None else pairs, half)
    frame = stream_frame() if stream else pair_frame(pairs)
    return _score(pairs, frame, group_fn)


# ---------------------------------------------------------------------------------------
# Reference methods (not written for hotspots)

def tfidf_groups(frame: pd.DataFrame, threshold: float = 0.6) -> np.ndarray:
    """``corpora.dedup.near_duplicate_groups`` (char 3-gram TF-IDF cosine ≥ 0.6 or containment)."""
    from corpora.dedup import near_duplicate_groups
    return near_duplicate_groups(frame["text"].astype(str).tolist(), threshold=threshold)


def jaccard_groups(frame: pd.DataFrame, threshold: float = 0.3, block: int = 1000) -> np.ndarray:
    """Connected components of character 3-gram Jaccard similarity ≥ ``threshold``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from sklearn.feature_extraction.text import CountVectorizer

    texts = [_NOT_WORD.sub("", str(t).lower()) or "∅" for t in frame["text"]]
    X = CountVectorizer(analyzer="char", ngram_range=(3, 3), binary=True, lowercase=False).fit_transform(texts)
    X = X.astype(np.float32).tocsr()
    size = np.asarray(X.sum(axis=1)).ravel()
    n = X.shape[0]
    rows, cols = [], []
    for start in range(0, n, block):
        inter = (X[start:start + block] @ X.T).tocoo()
        i = inter.row + start
        union = size[i] + size[inter.col] - inter.data
        keep = (inter.data / np.maximum(union, 1) >= threshold) & (i < inter.col)
        rows.append(i[keep])
        cols.append(inter.col[keep])
    r, c = np.concatenate(rows), np.concatenate(cols)
    _, labels = connected_components(coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)), directed=False)
    return labels


def _methods() -> dict[str, Callable]:
    methods: dict[str, Callable] = {}
    try:
        from models.hotspots import HotspotGrouper  # written separately; may be absent

        methods["HotspotGrouper"] = lambda frame: HotspotGrouper().add_frame(frame, progress=False)
    except ImportError as err:
        log.warning("models.hotspots.HotspotGrouper not importable (%s): references only", err)
    methods["near_duplicate_groups (TF-IDF cos>=0.6)"] = tfidf_groups
    methods["char-3-gram Jaccard>=0.3"] = lambda f: jaccard_groups(f, 0.3)
    methods["char-3-gram Jaccard>=0.2"] = lambda f: jaccard_groups(f, 0.2)
    methods["everything one group"] = lambda f: np.zeros(len(f), dtype=int)
    return methods


def _fmt(ci) -> str:
    return "–" if ci is None else f"{ci[0]:.2f}–{ci[1]:.2f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.hotspot_pairs", description=__doc__.split("\n")[0])
    ap.add_argument("command", nargs="?", default="evaluate", choices=["evaluate", "candidates"])
    ap.add_argument("--no-stream", action="store_true", help="skip grouping the whole stream")
    ap.add_argument("--half", default="all", choices=HALVES,
                    help="score the tune or held-out half of the pairs (split_halves), or all of them")
    ap.add_argument("--report", default=str(REPORT_FILE))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not shared_available():
        print(f"skipped: {SHARED} is absent (the pairs reference the real corpus)")
        return 0
    if args.command == "candidates":
        cand = sample_candidates()
        print(cand.groupby("band").size().to_string())
        print(f"{len(cand)} candidates (not written; the committed file is {CANDIDATES_FILE.relative_to(ROOT)})")
        return 0
    log.info("training.hotspot_pairs %s", vars(args))
    pairs = select_half(load_pairs(), args.half)
    report = {"pairs_file": str(PAIRS_FILE.relative_to(ROOT)), "half": args.half, "pairs": int(len(pairs)),
              "same": int(pairs["label"].sum()), "reasons": pairs["reason"].value_counts().to_dict(),
              "settings": {}}
    settings = [("pairs", False)] + ([] if args.no_stream else [("stream", True)])
    frames = {"pairs": pair_frame(pairs)}
    if not args.no_stream:
        frames["stream"] = stream_frame()
    print(f"{args.half}: {len(pairs)} labelled pairs, {report['same']} SAME")
    print(f"{'setting':8} {'method':42} {'precision':>9} {'95% CI':>11} {'recall':>7} {'95% CI':>11} {'pred.same':>9} {'s':>6}")
    for setting, _ in settings:
        report["settings"][setting] = {}
        for name, fn in _methods().items():
            try:
                s = _score(pairs, frames[setting], fn)
            except Exception as err:  # a grouper under development must not stop the references
                log.warning("%s failed on %s: %s: %s", name, setting, type(err).__name__, err)
                report["settings"][setting][name] = {"error": f"{type(err).__name__}: {err}"}
                continue
            report["settings"][setting][name] = s
            p = "–" if s["precision"] is None else f"{s['precision']:.3f}"
            print(f"{setting:8} {name:42} {p:>9} {_fmt(s['precision_ci95']):>11} {s['recall']:>7.3f} "
                  f"{_fmt(s['recall_ci95']):>11} {s['predicted_same']:>9} {s['seconds']:>6.1f}")
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
