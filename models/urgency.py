"""Urgency: grade appeals critical / urgent / routine, explain why, attach deadlines.

Two parts, each doing what it does best (docs/adr/0003-urgency-model.md):

* :class:`CueLexicon` — an explicit, reviewable layer of risk cues kept as data
  (``corpora/data/urgency_cues.csv``): hazards, basic needs cut, ongoing harm, wages,
  group and escalation signals, time words, vulnerable people, and negation
  (``没有燃气泄漏`` does not fire the gas cue). Every cue that fires is returned with its
  character span in the normalised text, so a dispatcher sees *why*.
* :class:`UrgencyModel` — two class-weighted logistic heads (critical; urgent or above)
  over character TF-IDF and the cue counts, with thresholds chosen on out-of-fold
  predictions for a stated operating point (see the class docstring): the level
  maximises macro-F1, and a separate "possible critical" alert catches the most critical
  appeals it can while firing on at most a set share of the random draw (a missed gas
  leak costs more than a false alarm, but a flag on most appeals is a flag nobody reads).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.utils.validation import check_is_fitted

from corpora.dedup import near_duplicate_groups
from corpora.rules import PatternSet, RuleFileError, rule_pattern, rule_rows
from corpora.text import DATA_DIR, is_negated
from models.charngrams import CharNgramTfidf, csr_from_rows
from models.doc import as_docs
from models.features import linear_scores

__all__ = ["LEVELS", "Cue", "CueLexicon", "load_cues", "SlaTable", "load_sla", "UrgencyModel", "level_thresholds",
           "choose_alert", "decode_ngram", "wilson"]

LEVELS = ("critical", "urgent", "routine")


@dataclass(frozen=True)
class Cue:
    cue: str
    kind: str
    level: str
    pattern: re.Pattern
    note: str


class CueLexicon:
    """Find risk cues in a text; negated cues (see :func:`corpora.text.is_negated`) are
    reported but do not count.

    Examples
    --------
    >>> lex = load_cues()
    >>> [(c["cue"], c["negated"]) for c in lex.find("楼道里有很浓的煤气味") if c["kind"] == "hazard"]
    [('燃气泄漏', False)]
    >>> [(c["cue"], c["negated"]) for c in lex.find("经检查没有燃气泄漏") if c["kind"] == "hazard"]
    [('燃气泄漏', True)]
    """

    def __init__(self, cues: list[Cue]):
        self.cues = cues
        self.kinds = sorted({c.kind for c in cues})
        self.feature_names = [f"{c.kind}:{c.cue}" for c in cues] + [f"kind:{k}" for k in self.kinds]
        self.prefilter = PatternSet([c.pattern for c in cues])
        self._column = {f"{c.kind}:{c.cue}": i for i, c in enumerate(cues)}
        self._kind_column = {k: len(cues) + i for i, k in enumerate(self.kinds)}

    def __setstate__(self, state):  # bundles pickled before the prefilter existed load too
        self.__init__(state["cues"])

    def find(self, text: str) -> list[dict]:
        """Cues in ``text`` (already normalised), each with its span, level and negation."""
        out = []
        for i in self.prefilter.candidates(text):
            c = self.cues[i]
            for m in c.pattern.finditer(text):
                out.append({"cue": c.cue, "kind": c.kind, "level": c.level, "start": m.start(), "end": m.end(),
                            "match": m.group(0), "negated": is_negated(text, m.start())})
        out.sort(key=lambda d: (d["start"], d["end"]))
        return out

    def features(self, found_per_text: list[list[dict]]) -> np.ndarray:
        """Per text: log1p count of each non-negated cue, then of each cue kind."""
        X = np.zeros((len(found_per_text), len(self.feature_names)))
        for r, found in enumerate(found_per_text):
            for f in found:
                if f["negated"]:
                    continue
                X[r, self._column[f"{f['kind']}:{f['cue']}"]] += 1
                X[r, self._kind_column[f["kind"]]] += 1
        return np.log1p(X)


def load_cues(path: Path | str = DATA_DIR / "urgency_cues.csv") -> CueLexicon:
    """Load and check the cue lexicon; a bad regex names its row."""
    path = Path(path)
    cues = []
    for i, row in rule_rows(path):
        pattern = rule_pattern(path, i, row["cue"], row["pattern"])
        if row["level"] not in {"critical", "urgent", "up", "down"}:
            raise RuleFileError(f"{path}:{i}: level must be critical, urgent, up or down; got {row['level']!r}")
        cues.append(Cue(row["cue"], row["kind"], row["level"], pattern, row.get("note", "")))
    return CueLexicon(cues)


@lru_cache(maxsize=1)
def default_cues() -> CueLexicon:
    return load_cues()


# --- Deadlines ---------------------------------------------------------------------
@dataclass(frozen=True)
class Sla:
    level: str
    contact_hours: float
    finish_hours: float
    report_back_hours: float


class SlaTable:
    """Response deadlines per urgency level, from ``corpora/data/sla.csv`` (per city).

    Examples
    --------
    >>> sla = load_sla()
    >>> d = sla.deadlines("urgent", "2025-01-06T09:00:00")
    >>> d["contact_within_hours"], d["contact_by"], d["finish_by"], d["report_back_by"]
    (1.0, '2025-01-06T10:00:00', '2025-01-09T09:00:00', '2025-01-10T09:00:00')
    """

    def __init__(self, rows: dict[str, Sla], city: str):
        self.rows = rows
        self.city = city

    def deadlines(self, level: str, received_at=None) -> dict:
        s = self.rows[level]
        out = {"city": self.city, "contact_within_hours": s.contact_hours, "finish_within_hours": s.finish_hours,
               "report_back_within_hours": s.report_back_hours}
        if received_at:
            t = received_at if isinstance(received_at, datetime) else datetime.fromisoformat(str(received_at))
            finish = t + timedelta(hours=s.finish_hours)
            out.update(contact_by=(t + timedelta(hours=s.contact_hours)).isoformat(),
                       finish_by=finish.isoformat(),
                       report_back_by=(finish + timedelta(hours=s.report_back_hours)).isoformat())
        return out


def load_sla(path: Path | str = DATA_DIR / "sla.csv", *, city: str = "default") -> SlaTable:
    """Deadlines for ``city``; levels missing for that city fall back to ``default``."""
    path = Path(path)
    rows: dict[str, dict[str, Sla]] = {}
    for i, r in rule_rows(path):
        if r["level"] not in LEVELS:
            raise RuleFileError(f"{path}:{i}: level must be one of {LEVELS}, got {r['level']!r}")
        try:
            sla = Sla(r["level"], float(r["contact_hours"]), float(r["finish_hours"]), float(r["report_back_hours"]))
        except ValueError:
            raise RuleFileError(f"{path}:{i}: hours must be numbers") from None
        rows.setdefault(r["city"], {})[r["level"]] = sla
    if "default" not in rows or set(rows["default"]) != set(LEVELS):
        raise ValueError(f"{path}: the 'default' city must define all levels {LEVELS}")
    if city not in rows:
        raise ValueError(f"{path}: no deadlines for city {city!r}; known: {sorted(rows)}")
    return SlaTable({**rows["default"], **rows[city]}, city)


# --- The model ----------------------------------------------------------------------
def choose_alert(score: np.ndarray, critical: np.ndarray, cue: np.ndarray, graded: np.ndarray,
                 in_draw: np.ndarray, budget: float) -> tuple[float, float]:
    """The alert's operating point: thresholds ``(cue_threshold, score_threshold)`` for
    ``graded | (cue & score >= cue_threshold) | (score >= score_threshold)``.

    Of the pairs whose alert fires on at most ``budget`` of the rows ``in_draw`` (the random
    draw: what a dispatcher's day looks like), the one that catches the most ``critical``
    rows; ties go to the pair that fires least. ``inf`` means that path never fires (both
    are ``inf`` when the critical grade alone is over budget). A cue is cheap evidence, so
    it may fire at a lower score than the score alone needs.

    Examples
    --------
    >>> score = np.array([0.9, 0.5, 0.4, 0.3, 0.2, 0.1])
    >>> crit = np.array([True, True, False, True, False, False])
    >>> cue = np.array([False, False, False, True, False, False])
    >>> none, draw = np.zeros(6, bool), np.ones(6, bool)
    >>> choose_alert(score, crit, cue, none, draw, budget=0.5)   # 0.9, 0.5 by score, 0.3 by its cue
    (0.3, 0.5)
    >>> choose_alert(score, crit, cue, none, draw, budget=0.2)   # one alert: the cued row, by its cue alone
    (0.3, inf)
    """
    if not 0 < budget <= 1:
        raise ValueError(f"the alert budget must be in (0, 1], got {budget!r}")
    grid = np.r_[np.unique(score), np.inf]
    if len(grid) > 201:
        grid = np.r_[np.unique(np.quantile(score, np.linspace(0, 1, 201))), np.inf]
    n_draw = max(int(in_draw.sum()), 1)
    best = (-1, -np.inf, -np.inf, -np.inf)  # (caught, −fired, score threshold, cue threshold): the largest wins
    by_score = score[:, None] >= grid[None, :]  # rows × thresholds
    for tc in grid:
        fire = graded[:, None] | by_score | (cue & (score >= tc))[:, None]
        caught, fired = fire[critical].sum(0), fire[in_draw].sum(0)
        for j in np.flatnonzero((fired <= budget * n_draw) & (grid >= tc)):
            best = max(best, (int(caught[j]), -int(fired[j]), float(grid[j]), float(tc)))
    if best[0] < 0:  # the critical grade alone is over budget: the alert adds nothing to it
        return np.inf, np.inf
    return best[3], best[2]


def wilson(k: int, n: int) -> list[float] | None:
    """95% Wilson interval of a proportion ``k / n`` (None when ``n`` is 0).

    >>> wilson(43, 45)
    [0.8517, 0.9877]
    """
    if n == 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(0.95, method="wilson")
    return [round(float(ci.low), 4), round(float(ci.high), 4)]


def _macro_f1(y, pred) -> float:
    f1s = []
    for lev in LEVELS:
        tp = np.sum((pred == lev) & (y == lev))
        denom = np.sum(pred == lev) + np.sum(y == lev)
        if np.sum(y == lev):
            f1s.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1s))


def level_thresholds(y, pc, pu) -> tuple[float, float, float]:
    """(macro-F1, critical threshold, urgent threshold): the pair of a grid over the
    scores' quantiles that grades ``y`` best from critical scores ``pc`` and
    urgent-or-above scores ``pu`` (the first such pair on ties). Without a critical appeal in
    ``y`` nothing is graded critical (the critical threshold is ``inf``): its critical scores
    are all 0, and a threshold of 0 graded every appeal critical."""
    grid_c = np.unique(np.quantile(pc, np.linspace(0.5, 1.0, 41)))
    if not (np.asarray(y) == "critical").any():
        grid_c = np.array([np.inf])
    grid_u = np.unique(np.quantile(pu, np.linspace(0.05, 0.95, 37)))
    best = (-1.0, 1.0, 0.5)
    for tc in grid_c:
        for tu in grid_u:
            f = _macro_f1(y, _grade(pc, pu, tc, tu))
            if f > best[0]:
                best = (f, float(tc), float(tu))
    return best


def _grade(p_critical, p_up, t_critical, t_up) -> np.ndarray:
    return np.where(p_critical >= t_critical, "critical",
                    np.where(p_up >= t_up, "urgent", "routine")).astype(object)


class UrgencyModel(ClassifierMixin, BaseEstimator):
    """Grade appeals critical / urgent / routine with cues, two heads and chosen thresholds.

    Two class-weighted logistic heads over character TF-IDF plus the cue features: one
    scores *critical*, one scores *urgent or above*. On out-of-fold predictions inside
    ``fit`` three thresholds are chosen (the operating point):

    * ``critical_threshold_`` and ``urgent_threshold_`` maximise macro-F1 of the level;
    * an appeal not graded critical is flagged ``possible_critical`` when a live (not
      negated) critical cue fires and its critical score reaches ``alert_cue_threshold_``,
      or its score alone reaches ``alert_threshold_``. The pair is chosen by
      :func:`choose_alert`: the most critical appeals caught while the alert (critical
      grade included) fires on at most ``alert_budget`` of the random draw — the share of
      a dispatcher's day the flag may take. The random draw is the rows whose
      ``sampling`` is ``"random"`` (all rows when ``fit`` is given no sampling). What
      the chosen point caught and fired on out of fold, with 95% intervals, is kept in
      ``alert_oof_``. A missed gas leak costs more than a false alarm, but a flag on
      most appeals is a flag nobody reads; the level keeps its own thresholds, so
      "critical" stays rare; dispatchers can also sort by ``critical_score``.

    Parameters
    ----------
    C : float, default 3.0
        Inverse regularisation of both heads (C = 1 / 3 / 10 in
        ``python -m training.urgency_ablation``: macro-F1 0.590 / 0.599 / 0.595).
    cue_weight : float, default 1.0
        Scale of the cue features relative to the TF-IDF block.
    alert_budget : float, default 0.08
        Largest share of the random draw the critical alert may fire on.
    max_features : int, default 50000
        Character n-grams kept.
    max_chars : int or None, default None
        The character n-grams read the first ``max_chars`` characters (None: all); the cues
        always read the whole text. Off by default: a late sentence can be the one that makes
        an appeal urgent, and a 1,500-character window gains nothing on the real labels
        (``python -m training.urgency_ablation --only heads window-1500``: macro-F1 0.597
        vs 0.599).
    threshold_folds : int, default 5
    random_state : int or None, default 0

    Examples
    --------
    >>> X = ["楼道里有很浓的煤气味", "暖气不热已经三天", "建议增加公交线路"] * 6
    >>> y = ["critical", "urgent", "routine"] * 6
    >>> m = UrgencyModel(threshold_folds=3).fit(X, y)
    >>> m.predict(["家里有煤气味，很危险", "请问公交线路怎么调整"]).tolist()
    ['critical', 'routine']
    """

    max_chars = None  # models saved before the parameter existed read whole texts

    alert_cue_threshold_ = 0.0  # models saved before the alert budget: any live critical cue alerts

    def __init__(self, *, C=3.0, cue_weight=1.0, alert_budget=0.08, max_features=50_000, max_chars=None,
                 threshold_folds=5, random_state=0):
        self.max_chars = max_chars
        self.C = C
        self.cue_weight = cue_weight
        self.alert_budget = alert_budget
        self.max_features = max_features
        self.threshold_folds = threshold_folds
        self.random_state = random_state

    def _head(self):
        return LogisticRegression(C=self.C, class_weight="balanced", solver="liblinear")

    def _features(self, vec, docs, found):
        """Character TF-IDF rows with the cue features stacked beside them."""
        cues = self.cues_.features(found) * self.cue_weight
        offset = len(vec.keys_)
        rows = []
        for (ci, cv), cue in zip(vec.rows(docs), cues):
            nz = np.flatnonzero(cue)
            rows.append((np.concatenate([ci, nz + offset]), np.concatenate([cv, cue[nz]])))
        return csr_from_rows(rows, offset + cues.shape[1])

    def _fit_heads(self, docs, found, y):
        vec = CharNgramTfidf(min_df=2 if len(docs) >= 50 else 1, max_features=self.max_features,
                             max_chars=self.max_chars).fit(docs)
        F = self._features(vec, docs, found)
        crit = y == "critical"
        up = y != "routine"
        head_c = self._head().fit(F, crit) if 0 < crit.sum() < len(y) else None
        head_u = self._head().fit(F, up) if 0 < up.sum() < len(y) else None
        return vec, head_c, head_u

    def _scores(self, heads, docs, found, *, features=False):
        vec, head_c, head_u = heads
        F = self._features(vec, docs, found)
        # a binary logistic head's probability is expit of its linear score
        pc = expit(linear_scores(head_c, F)) if head_c is not None else np.zeros(len(docs))
        pu = expit(linear_scores(head_u, F)) if head_u is not None else np.zeros(len(docs))
        return (pc, np.maximum(pu, pc), F) if features else (pc, np.maximum(pu, pc))

    def evidence(self, row, k: int = 3) -> list[str]:
        """The ``k`` features of one feature row (see :meth:`_features`) that raise its
        critical score most: character n-grams (longest kept where one contains another)
        or cue names. Shown when a critical grade has no live cue behind it."""
        if self.critical_head_ is None:
            return []
        n_grams = len(self.vectorizer_.keys_)
        contrib = row.data * self.critical_head_.coef_.ravel()[row.indices]
        names: list[str] = []
        singles: list[str] = []  # single characters say little: shown only when nothing longer raised the score
        for j in np.argsort(-contrib):
            if contrib[j] <= 0 or len(names) >= k:
                break
            col = int(row.indices[j])
            name = (decode_ngram(int(self.vectorizer_.keys_[col])) if col < n_grams
                    else self.cues_.feature_names[col - n_grams].split(":", 1)[1]).strip()
            if len(name) < 2:
                singles += [name] if name else []
            elif not any(name in other for other in names):
                names = [other for other in names if other not in name] + [name]
        return names or singles[:k]

    def fit(self, X, y, sampling=None):
        """Fit on texts ``X`` with levels ``y``; ``sampling`` names each row's draw (the
        alert's budget is measured on the ``"random"`` rows; all rows when None)."""
        y = np.asarray(y, dtype=object)
        unknown = sorted(set(y) - set(LEVELS))
        if unknown:
            raise ValueError(f"unknown urgency labels {unknown}; allowed: {list(LEVELS)}")
        if not 0 < self.alert_budget <= 1:
            raise ValueError(f"alert_budget must be in (0, 1], got {self.alert_budget!r}")
        docs = as_docs(X)
        if len(docs) != len(y):
            raise ValueError(f"X has {len(docs)} texts but y has {len(y)} labels")
        in_draw = np.ones(len(y), dtype=bool)
        if sampling is not None:
            sampling = np.asarray(sampling, dtype=object)
            if len(sampling) != len(y):
                raise ValueError(f"sampling has {len(sampling)} entries but y has {len(y)} labels")
            if (sampling == "random").any():
                in_draw = sampling == "random"
        present = [lev for lev in LEVELS if (y == lev).any()]
        if len(present) < 2:
            raise ValueError(f"need at least 2 urgency levels to train, got {present}")
        self.classes_ = np.array(LEVELS, dtype=object)
        self.cues_ = default_cues()
        self.sla_ = load_sla()
        found = [self.cues_.find(d.text) for d in docs]
        n_splits = min(self.threshold_folds, int(min((y == lev).sum() for lev in present)))
        if n_splits < 2:
            raise ValueError("each urgency level present needs at least 2 examples to choose thresholds")
        pc, pu = np.zeros(len(y)), np.zeros(len(y))
        folds = StratifiedGroupKFold(n_splits, shuffle=True, random_state=self.random_state)
        for tr, te in folds.split(np.zeros(len(y)), y, near_duplicate_groups([d.text for d in docs])):
            heads = self._fit_heads([docs[i] for i in tr], [found[i] for i in tr], y[tr])
            pc[te], pu[te] = self._scores(heads, [docs[i] for i in te], [found[i] for i in te])
        self.oof_macro_f1_, self.critical_threshold_, self.urgent_threshold_ = level_thresholds(y, pc, pu)
        hazard = np.array([_live_critical_cue(f) for f in found])
        crit, graded = y == "critical", pc >= self.critical_threshold_
        self.alert_cue_threshold_, self.alert_threshold_ = choose_alert(pc, crit, hazard, graded, in_draw,
                                                                        self.alert_budget)
        fired = graded | (hazard & (pc >= self.alert_cue_threshold_)) | (pc >= self.alert_threshold_)
        self.alert_oof_ = {"recall": round(float(fired[crit].mean()), 4) if crit.any() else None,
                           "recall_ci95": wilson(fired[crit].sum(), crit.sum()),
                           "fires_on_draw": round(float(fired[in_draw].mean()), 4),
                           "fires_on_draw_ci95": wilson(fired[in_draw].sum(), in_draw.sum()),
                           "draw": "random" if not in_draw.all() else "all", "n_draw": int(in_draw.sum()),
                           "n_critical": int(crit.sum())}
        self.vectorizer_, self.critical_head_, self.urgent_head_ = self._fit_heads(docs, found, y)
        return self

    def _heads(self):
        check_is_fitted(self, "vectorizer_")
        return self.vectorizer_, self.critical_head_, self.urgent_head_

    def predict_proba(self, X):
        """Per appeal: (critical score, urgent-or-above score − critical score, 1 − urgent-or-above).

        Columns in ``classes_`` order; the heads are calibrated by logistic regression
        with balanced class weights, so these are scores for ranking, not prevalences.
        """
        docs = as_docs(X)
        pc, pu = self._scores(self._heads(), docs, [self.cues_.find(d.text) for d in docs])
        return np.column_stack([pc, pu - pc, 1 - pu])

    def predict(self, X):
        docs = as_docs(X)
        pc, pu = self._scores(self._heads(), docs, [self.cues_.find(d.text) for d in docs])
        return _grade(pc, pu, self.critical_threshold_, self.urgent_threshold_)

    def explain(self, X, received_at=None, sla: SlaTable | None = None) -> list[dict]:
        """Level, score, the cues that fired (spans in the normalised text) and deadlines
        (from ``sla``, default the table loaded at fit)."""
        sla = sla or self.sla_
        docs = as_docs(X)
        found = [self.cues_.find(d.text) for d in docs]
        pc, pu, F = self._scores(self._heads(), docs, found, features=True)
        levels = _grade(pc, pu, self.critical_threshold_, self.urgent_threshold_)
        received_at = received_at or [None] * len(docs)
        out = []
        for i, level in enumerate(levels):
            cues = found[i]
            hazard = _live_critical_cue(cues) and pc[i] >= self.alert_cue_threshold_
            possible_critical = bool(level != "critical" and (pc[i] >= self.alert_threshold_ or hazard))
            score = float(pc[i]) if level == "critical" else float(pu[i])
            out.append({
                "urgency": str(level),
                "urgency_score": round(score, 4),
                "critical_score": round(float(pc[i]), 4),
                "possible_critical": possible_critical,
                "urgency_cues": cues,
                "urgency_reason": _reason(level, cues, lambda: self.evidence(F[i])),
                "deadlines": sla.deadlines(str(level), received_at[i]),
            })
        return out


def _live_critical_cue(cues: list[dict]) -> bool:
    """A critical cue fired and is not negated: the alert goes up whatever the scores say."""
    return any(c["level"] == "critical" and not c["negated"] for c in cues)


def decode_ngram(key: int) -> str:
    """The characters of a packed n-gram key (:func:`models.charngrams.ngram_keys`).

    >>> from models.charngrams import ngram_keys
    >>> decode_ngram(int(ngram_keys("煤气味", (3, 3))[0]))
    '煤气味'
    """
    chars = []
    while key:
        chars.append(chr(key & ((1 << 21) - 1)))
        key >>= 21
    return "".join(reversed(chars))


_LABEL = {"critical": "特急", "urgent": "紧急", "routine": "一般"}
_ORDER = {"critical": 0, "urgent": 1, "up": 2, "down": 3}


def _reason(level, cues, evidence=None) -> str:
    """One line naming what decided the level.

    Critical: its live critical cues, or, when none fired, the model's evidence (the
    n-grams that raised the critical score most, from ``evidence()``). Routine: the cues
    that point down come first (a question, a planning request, a past event). Otherwise
    the live cues, strongest first.

    >>> cue = lambda name, level: {"cue": name, "level": level, "negated": False}
    >>> _reason("routine", [cue("火灾", "critical"), cue("过去事件", "down")])
    '一般：过去事件、火灾'
    >>> _reason("critical", [cue("当下", "up")], lambda: ["困在电梯", "出不来"])
    '特急：模型依据「困在电梯」「出不来」；当下'
    """
    live = [c for c in cues if not c["negated"]]
    order = dict(_ORDER, down=-1) if level == "routine" else _ORDER
    live.sort(key=lambda c: order.get(c["level"], 9))
    names = list(dict.fromkeys(c["cue"] for c in live))
    if level == "critical" and not any(c["level"] == "critical" for c in live) and evidence is not None:
        shown = "".join(f"「{e}」" for e in evidence())
        if shown:
            return f"{_LABEL[level]}：模型依据{shown}" + ("；" + "、".join(names[:3]) if names else "")
    return f"{_LABEL[level]}：" + ("、".join(names[:4]) if names else "无风险线索，依全文模型判断")
