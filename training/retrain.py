"""Retraining on dispatchers' corrections, behind a gate that never lets a worse model go live.

``retrain`` builds the training set from the base training files plus every human label
in the database (an appeal uses its latest label per field; urgency corrections feed the
urgency model), trains a challenger, and scores champion and challenger on the same
held-out appeals, which neither model has trained on:

- the pool: labelled appeals whose text the champion never trained on (each bundle keeps
  64-bit hashes of its training texts in its ``training_rows`` artifact). With the same
  base files as the champion, that is the human labels the champion has not seen;
- held out from the pool: the newest ``newest_share`` of human labels (by label time: does
  the model still work on what dispatchers see now?) plus a ``holdout_share`` grouped
  split of the rest. Near-duplicates (``corpora.dedup``) sit wholly on one side.

The gate (``GatePolicy``) then decides by named rules, and the report says which rule
decided. The challenger trains on everything not held out, and that exact model is what
is promoted: what was judged is what goes live.
"""
from __future__ import annotations

import hashlib
import logging
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from corpora.records import appeal_texts
from corpora.text import normalise
from training.metrics import classification_summary
from training.split import near_duplicate_groups

log = logging.getLogger(__name__)

__all__ = ["GatePolicy", "retrain", "human_labels", "labelled_rows", "row_keys", "heldout_split", "score_category",
           "score_urgency", "gate"]


@dataclass(frozen=True)
class GatePolicy:
    """When a challenger may replace the champion (``SUQIU_RETRAIN_*`` settings)."""
    macro_f1_tolerance: float = 0.005  # the challenger's held-out macro-F1 may trail by at most this
    critical_recall_tolerance: float = 0.0  # ... its critical recall (level or alert) by at most this
    max_category_drop: float = 0.05  # no category's F1 may drop by more than this ...
    min_category_support: int = 10  # ... judged on categories with at least this many held-out appeals
    min_heldout: int = 50  # fewer held-out appeals than this cannot show the challenger is not worse
    max_suspect_share: float = 0.35  # new labels flagged as likely errors above this share: review first
    newest_share: float = 0.2  # newest human labels held out
    holdout_share: float = 0.2  # grouped share of the rest of the pool held out

    def __post_init__(self):
        for name in ("newest_share", "holdout_share", "max_suspect_share"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        for name in ("macro_f1_tolerance", "critical_recall_tolerance", "max_category_drop"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("min_heldout", "min_category_support"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")


def row_keys(texts) -> np.ndarray:
    """64-bit keys of the normalised model inputs: what ``training_rows`` stores."""
    return np.array([int.from_bytes(hashlib.blake2b(normalise(t).encode("utf-8"), digest_size=8).digest(), "big")
                     for t in texts], dtype=np.uint64)


def human_labels(session) -> pd.DataFrame:
    """Every appeal with a human label, its latest label per field and when it was given.

    Columns: ``id, time, title, text, district, category, urgency, category_at, urgency_at,
    labelled_at`` (the latest of the two), oldest label first.
    """
    from sqlalchemy import select

    from service.db import Appeal, Label

    latest: dict[tuple[str, str], tuple] = {}
    for appeal_id, field, value, at, lid in session.execute(
            select(Label.appeal_id, Label.field, Label.new_value, Label.created_at, Label.id)
            .order_by(Label.created_at, Label.id)):
        latest[(appeal_id, field)] = (value, at)
    ids = sorted({a for a, _ in latest})
    rows = []
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        for a in session.execute(select(Appeal.id, Appeal.time, Appeal.title, Appeal.text, Appeal.district)
                                 .where(Appeal.id.in_(chunk))):
            cat, urg = latest.get((a.id, "category")), latest.get((a.id, "urgency"))
            rows.append({"id": a.id, "time": a.time, "title": a.title, "text": a.text, "district": a.district,
                         "category": cat[0] if cat else None, "urgency": urg[0] if urg else None,
                         "category_at": cat[1] if cat else None, "urgency_at": urg[1] if urg else None})
    cols = ["id", "time", "title", "text", "district", "category", "urgency", "category_at", "urgency_at"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["labelled_at"] = frame[["category_at", "urgency_at"]].max(axis=1)
    return frame.sort_values("labelled_at", kind="stable").reset_index(drop=True)


def labelled_rows(base: pd.DataFrame | None, human: pd.DataFrame, field: str) -> pd.DataFrame:
    """One row per labelled appeal for ``field``: ``text`` (model input), ``label``,
    ``source`` (``appeal:ID``, else the base frame's ``source`` column, else ``file:INDEX``), ``labelled_at`` (human labels only),
    ``key``, plus ``sampling`` for urgency when the base file has it. A human label
    replaces a base row with the same normalised text."""
    parts = []
    h = human[human[field].notna()] if field in human.columns else human.iloc[:0]
    if len(h):
        parts.append(pd.DataFrame({"text": appeal_texts(h), "label": h[field].to_numpy(dtype=object),
                                   "source": ["appeal:" + str(i) for i in h["id"]],
                                   "labelled_at": h[f"{field}_at"].to_numpy(), "human": True}))
    if base is not None and field in base.columns:
        b = base[base[field].notna()]
        if len(b):
            frame = pd.DataFrame({"text": appeal_texts(b), "label": b[field].to_numpy(dtype=object),
                                  "source": b["source"].to_numpy(dtype=object) if "source" in b.columns
                                  else [f"file:{i}" for i in b.index], "labelled_at": pd.NaT, "human": False})
            if "sampling" in b.columns:
                frame["sampling"] = b["sampling"].to_numpy(dtype=object)
            parts.insert(0, frame)
    if not parts:
        return pd.DataFrame(columns=["text", "label", "source", "labelled_at", "human", "key"])
    rows = pd.concat(parts, ignore_index=True)
    rows["key"] = row_keys(rows["text"])
    if "sampling" in rows.columns:  # a human label comes from the stream: the random draw
        rows["sampling"] = rows["sampling"].where(~rows["human"].astype(bool), "random")
    # the latest human label wins over a base row (or an older copy) of the same text
    order = rows["human"].astype(int).to_numpy() * 2 + np.arange(len(rows)) / max(len(rows), 1)
    keep = pd.Series(order).groupby(rows["key"].to_numpy()).idxmax().to_numpy()
    return rows.loc[np.sort(keep)].reset_index(drop=True)


def heldout_split(rows: pd.DataFrame, seen: np.ndarray | None, policy: GatePolicy, *, random_state=0,
                  groups: np.ndarray | None = None):
    """Indices (train, heldout, newest ⊆ heldout) of ``rows``.

    Only rows whose key is not in ``seen`` (the champion's training rows; None: unknown, so
    only human labels) may be held out. The newest ``newest_share`` of the pool's human
    labels are held out, then a stratified grouped ``holdout_share`` of the rest of the
    pool; the pool members of a near-duplicate group are held out together. ``groups``:
    the rows' near-duplicate groups when already computed.
    """
    n = len(rows)
    if n == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
    groups = near_duplicate_groups(rows["text"].tolist()) if groups is None else np.asarray(groups)
    human = rows["human"].to_numpy(dtype=bool)
    pool = human.copy() if seen is None else ~np.isin(rows["key"].to_numpy(np.uint64), seen)
    held_groups = set()
    hp = np.flatnonzero(pool & human)
    if len(hp) and policy.newest_share > 0:
        at = pd.to_datetime(rows["labelled_at"].to_numpy()[hp], utc=True)
        newest = hp[np.argsort(at.asi8, kind="stable")][-max(1, round(policy.newest_share * len(hp))):]
        held_groups |= set(groups[newest].tolist())
    newest_mask = np.isin(groups, list(held_groups)) & pool
    rest = np.flatnonzero(pool & ~newest_mask)
    if len(rest) >= 2 and policy.holdout_share > 0:
        n_splits = max(2, round(1 / policy.holdout_share))
        y = rows["label"].to_numpy(dtype=object)[rest]
        splitter = StratifiedGroupKFold(n_splits=min(n_splits, len(np.unique(groups[rest]))), shuffle=True,
                                        random_state=random_state)
        if splitter.n_splits >= 2:
            with warnings.catch_warnings():  # a class rarer than the folds is spread as well as it can be
                warnings.filterwarnings("ignore", "The least populated class", UserWarning)
                _, te = next(splitter.split(np.zeros(len(rest)), y, groups[rest]))
            held_groups |= set(groups[rest[te]].tolist())
    held = np.isin(groups, list(held_groups)) & pool
    # A held-out appeal's near-duplicates the champion trained on stay in the challenger's
    # training too: both models saw them, so neither gains from it.
    return np.flatnonzero(~held), np.flatnonzero(held), np.flatnonzero(newest_mask)


def score_category(model, texts, y, labels=None) -> dict:
    """Held-out category metrics of a fitted ``CategoryClassifier`` (``labels``: the
    categories judged; default those in ``y``)."""
    y = np.asarray(y, dtype=object)
    labels = sorted(set(y)) if labels is None else list(labels)
    if not len(y):
        return {"n": 0, "macro_f1": None, "per_class": {}}
    proba = model.predict_proba(texts)
    pred = model.classes_[proba.argmax(1)]
    out = classification_summary(y, pred, labels, proba.max(1))
    out.pop("confusion_matrix")
    return out


def score_urgency(model, texts, y) -> dict:
    """Held-out urgency metrics: level macro-F1, critical recall by level, and critical
    caught (level critical or the possible-critical alert)."""
    from training.urgency import _explained, _summary

    y = np.asarray(y, dtype=object)
    if model is None or not len(y):
        return {"n": int(len(y)), "macro_f1": None, "critical_caught": None}
    pred, alert = _explained(model, list(texts))
    s = _summary(y, pred, alert)
    return {"n": s["n"], "macro_f1": s["macro_f1"], "critical_recall": s["critical_recall"],
            "critical_caught": s["critical_alert"]["recall"], "critical_support": int((y == "critical").sum()),
            "alert_share": s["critical_alert"]["share_of_appeals_alerted"]}


def gate(champion: dict, challenger: dict, policy: GatePolicy, *, suspects: dict | None = None):
    """``(promoted, reason, rules)``: every rule with whether it passed and its figures;
    ``reason`` names the first rule that failed (or says all passed)."""
    rules = []

    def rule(name, passed, detail):
        rules.append({"rule": name, "passed": bool(passed) if passed is not None else None, "detail": detail})

    cat_a, cat_b = champion.get("category", {}), challenger.get("category", {})
    n = cat_b.get("n", 0)
    rule("min_heldout", n >= policy.min_heldout,
         f"{n} held-out appeals the champion never trained on (need ≥ {policy.min_heldout})")
    if suspects is not None and suspects.get("new_labels"):
        # Where the check flags many other labels too (a small or templated corpus the fast
        # model cannot tell apart), only twice their share (checked without the new labels)
        # condemns the new ones.
        share, base = suspects["new_suspect"] / suspects["new_labels"], suspects.get("base_share")
        allowed = max(policy.max_suspect_share, 2 * (base or 0.0))
        rule("label_quality", share <= allowed,
             f"{suspects['new_suspect']} of {suspects['new_labels']} new human labels ({share:.0%}) look like "
             f"label errors (allowed ≤ {allowed:.0%}: {policy.max_suspect_share:.0%}" +
             (f", or twice the {base:.0%} of the other labels, checked without the new ones)" if base is not None
              else ")"))
    if n:
        a, b = cat_a.get("macro_f1") or 0.0, cat_b.get("macro_f1") or 0.0
        rule("macro_f1", b >= a - policy.macro_f1_tolerance,
             f"held-out macro-F1 {b:.4f} vs champion {a:.4f} (tolerance {policy.macro_f1_tolerance})")
        drops = []
        for cat, s in cat_b.get("per_class", {}).items():
            old = cat_a.get("per_class", {}).get(cat)
            if old is None or s["support"] < policy.min_category_support:
                continue
            if s["f1"] < old["f1"] - policy.max_category_drop:
                drops.append(f"{cat} {old['f1']:.3f} → {s['f1']:.3f}")
        rule("category_drop", not drops,
             ("F1 dropped more than %.2f: " % policy.max_category_drop + "; ".join(drops)) if drops else
             f"no category with ≥ {policy.min_category_support} held-out appeals lost more than "
             f"{policy.max_category_drop} F1")
    urg_a, urg_b = champion.get("urgency") or {}, challenger.get("urgency") or {}
    if urg_b.get("critical_support"):
        a, b = urg_a.get("critical_caught"), urg_b.get("critical_caught")
        if a is None:
            rule("critical_recall", True, f"critical caught {b:.3f} (the champion has no urgency model)")
        else:
            rule("critical_recall", b >= a - policy.critical_recall_tolerance,
                 f"critical caught {b:.3f} vs champion {a:.3f} on {urg_b['critical_support']} held-out critical "
                 f"appeals (tolerance {policy.critical_recall_tolerance})")
    else:
        rule("critical_recall", None, "no held-out critical appeals: not judged")
    failed = [r for r in rules if r["passed"] is False]
    if failed:
        return False, f"rejected by {failed[0]['rule']}: {failed[0]['detail']}", rules
    judged = ", ".join(r["rule"] for r in rules if r["passed"])
    return True, f"promoted: passed {judged}", rules


def _headline(report: dict) -> dict:
    """The figures the command line prints for one model."""
    cat, urg, newest = report.get("category", {}), report.get("urgency") or {}, report.get("newest", {})
    return {"macro_f1": cat.get("macro_f1"), "accuracy": cat.get("accuracy"), "n": cat.get("n", 0),
            "newest_macro_f1": newest.get("macro_f1"), "newest_n": newest.get("n", 0),
            "urgency_macro_f1": urg.get("macro_f1"), "critical_caught": urg.get("critical_caught"),
            "urgency_n": urg.get("n", 0)}


def retrain(base: pd.DataFrame, *, human: pd.DataFrame, registry, by: str, urgency_base: pd.DataFrame | None = None,
            policy: GatePolicy | None = None, categories: dict | None = None, find_suspects=True,
            on_suspects=None, random_state: int = 0, progress: bool = True) -> dict:
    """Train a challenger on ``base`` + ``human`` labels, judge it against the registry's
    champion on held-out appeals neither trained on, and promote it or keep it rejected.

    ``human``: as from :func:`human_labels`. ``categories``: categories an admin added
    ({name: department}), which labels may use. ``on_suspects(frame, version)`` receives the
    likely label errors and the challenger's version (they stay in the training data:
    listed for review, never dropped).
    Returns the report; its keys ``champion, challenger, promoted, reason,
    champion_metrics, challenger_metrics`` are what ``suqiu retrain`` prints.
    """
    from models.registry import current_version, load_bundle, promote, record_status
    from training.train import train_bundle

    policy = policy or GatePolicy()
    t0 = time.perf_counter()
    champ_path = current_version(registry)
    champion = load_bundle(champ_path) if champ_path is not None else None
    seen = champion.models.get("training_rows") if champion is not None else None
    report: dict = {"policy": asdict(policy), "started": utcnow().isoformat(timespec="seconds"), "by": by}

    cat = labelled_rows(base, human, "category")
    if cat.empty:
        raise ValueError("no category labels: give base training data (--data) or label appeals first")
    urg = labelled_rows(urgency_base, human, "urgency")
    n_human_urg = int(urg["human"].sum()) if len(urg) else 0
    if urgency_base is None and n_human_urg and champion is not None and "urgency" in champion.models:
        raise ValueError(f"{n_human_urg} appeals have human urgency labels: give the urgency model's base "
                         "training file(s) (--urgency-data) so it retrains on both")
    report["data"] = {"category": {"rows": len(cat), "human": int(cat["human"].sum())},
                      "urgency": {"rows": len(urg), "human": n_human_urg}}

    groups = near_duplicate_groups(cat["text"].tolist())  # for the split and the label check alike
    c_train, c_held, c_new = heldout_split(cat, None if seen is None else seen.get("category"), policy,
                                           random_state=random_state, groups=groups)
    report["heldout"] = {"category": len(c_held), "newest": len(c_new),
                         "pool": "appeals the champion never trained on" if seen is not None else
                                 "human-labelled appeals only (the champion does not list its training rows)"}
    log.info("retrain: %d category rows (%d human), %d held out (%d newest)", len(cat), report["data"]["category"]
             ["human"], len(c_held), len(c_new))

    version = utcnow().strftime("%Y%m%d-%H%M%S-%f")  # the challenger's
    suspects = None
    if find_suspects:
        from training.label_quality import find_label_issues

        t1 = time.perf_counter()
        issues = find_label_issues(cat["text"].tolist(), cat["label"].to_numpy(dtype=object),
                                   sources=cat["source"].tolist(), groups=groups, random_state=random_state)
        new = cat["human"].to_numpy(bool) & ~np.isin(cat["key"].to_numpy(np.uint64),
                                                       np.zeros(0, np.uint64) if seen is None else seen["category"])
        flagged = np.isin(cat["source"].to_numpy(dtype=object), issues["source"].to_numpy(dtype=object))
        suspects = {"found": len(issues), "new_labels": int(new.sum()), "new_suspect": int((flagged & new).sum())}
        # How often the check flags labels the new ones did not touch: measured without them,
        # or a poisoned batch would raise its own allowance by confusing the check's model.
        old = ~new
        base_share = None  # measured only when the new labels' share is over the set one
        if suspects["new_labels"] and suspects["new_suspect"] > policy.max_suspect_share * suspects["new_labels"] \
                and old.sum() >= 2:
            without = find_label_issues(cat["text"][old].tolist(), cat["label"][old].to_numpy(dtype=object),
                                        sources=cat["source"][old].tolist(), groups=groups[old],
                                        random_state=random_state)
            base_share = len(without) / int(old.sum())
        suspects.update(base_share=base_share, seconds=elapsed(t1))
        report["label_suspects"] = suspects
        if on_suspects is not None:
            on_suspects(issues, version)

    u_train = u_held = np.zeros(0, int)
    if len(urg):
        u_train, u_held, _ = heldout_split(urg, None if seen is None else seen.get("urgency"), policy,
                                           random_state=random_state)
        report["heldout"]["urgency"] = len(u_held)

    train_frame = pd.DataFrame({"text": cat["text"].to_numpy()[c_train], "category": cat["label"].to_numpy()[c_train]})
    urg_frame = None
    if len(u_train):
        urg_frame = pd.DataFrame({"text": urg["text"].to_numpy()[u_train], "urgency": urg["label"].to_numpy()[u_train]})
        if "sampling" in urg.columns:
            urg_frame["sampling"] = urg["sampling"].to_numpy()[u_train]
    t1 = time.perf_counter()
    bundle = train_bundle(train_frame, Path(registry) / version,
                          urgency_data=urg_frame, evaluate=False, random_state=random_state, progress=progress,
                          version=version, categories=categories,
                          # the champion's kind of model: retraining an encoder backend keeps it one
                          backend=champion.manifest.get("backend", "tfidf") if champion else "tfidf",
                          base_model=champion.manifest.get("base_model") if champion else None,
                          carry=champion if urg_frame is None else None,
                          extra={"retrain": {"by": by, "champion": champion.version if champion else None,
                                             "data": report["data"], "heldout": report["heldout"]}})
    report["train_seconds"] = elapsed(t1)

    def judge(b):
        out = {}
        texts, y = cat["text"].to_numpy()[c_held].tolist(), cat["label"].to_numpy(dtype=object)[c_held]
        out["category"] = score_category(b.models["category"], texts, y)
        nt, ny = cat["text"].to_numpy()[c_new].tolist(), cat["label"].to_numpy(dtype=object)[c_new]
        out["newest"] = score_category(b.models["category"], nt, ny)
        if len(u_held):
            out["urgency"] = score_urgency(b.models.get("urgency"), urg["text"].to_numpy()[u_held].tolist(),
                                           urg["label"].to_numpy(dtype=object)[u_held])
        return out

    challenger = judge(bundle)
    if champion is None:
        promoted, reason, rules = True, "promoted: there is no champion yet", []
        champ = {}
    else:
        champ = judge(champion)
        promoted, reason, rules = gate(champ, challenger, policy, suspects=suspects)
    report.update({"champion": champion.version if champion else None, "challenger": bundle.version,
                   "promoted": promoted, "reason": reason, "rules": rules,
                   "champion_metrics": _headline(champ), "challenger_metrics": _headline(challenger),
                   "champion_report": champ, "challenger_report": challenger})
    report["seconds"] = elapsed(t0)
    record_status(bundle.version, "candidate" if promoted else "rejected", by=by, reason=reason,
                  report=_summary(report), registry=registry)
    if promoted:
        promote(bundle.version, by=by, reason=reason, registry=registry)
    log.info("retrain: %s", reason)
    return report


def _summary(report: dict) -> dict:
    """What the registry keeps of a retrain report (no per-class tables)."""
    keep = ("champion", "challenger", "promoted", "reason", "rules", "champion_metrics", "challenger_metrics",
            "heldout", "data", "label_suspects", "policy", "seconds")
    return {k: report[k] for k in keep if k in report}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def elapsed(t0: float) -> float:
    return round(time.perf_counter() - t0, 1)
