"""What was tried for the urgency level, measured the same way (ADR 0003).

    python -m training.urgency_ablation [--data FILE] [--only NAME ...] [--nested-seeds 0 1 2 3]
                                        [--cues FILE] [--background FILE ...]

Each variant is scored on the same grouped 5-fold out-of-fold predictions: ROC-AUC and
average precision of the critical score, ROC-AUC of the urgent-or-above score, and the
level's macro-F1 with thresholds chosen on the pooled out-of-fold scores (the same for
every variant, so it ranks ideas; the nested figures of ``--nested-seeds``, where each
fold chooses its own operating point, are the ones to report). ``--cues`` swaps the
cue file (e.g. an older one from git) for both. Needs ``../shared`` or your own labels.
The encoder variants (``embed1``, ``embed2``, ``finetune``, ``finetune+heads``) build the
encoder cache on first use (models/encoder.py); ``finetune`` takes ~3 CPU minutes a fold.
"""
from __future__ import annotations

import argparse
import re
import sys

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import average_precision_score, roc_auc_score
from tqdm.auto import tqdm

import models.urgency as mu
from corpora.records import appeal_texts, read_appeals
from models.charngrams import CharNgramTfidf
from models.doc import Doc, as_docs
from models.features import WordCharTfidf
from training.split import grouped_folds, near_duplicate_groups

SHARED = "../shared/corpora"
DATA = f"{SHARED}/urgency/labels_dev.csv"
BACKGROUND = [f"{SHARED}/tipdm2020c/{f}" for f in
              ("appeals_unlabelled_hot.csv", "appeals_with_replies.csv", "appeals_labelled_dev.csv")]

# Guideline modifiers looked for in the sentence around each live cue (the "context" variant).
MODIFIERS = {
    "hypothetical": r"可能|万一|如果|一旦|假如|恐怕|担心|隐患|风险|容易|难免|以防|防止|预防|避免",
    "past": r"曾经|去年|前年|年前|当年|当时|以前|之前|那年|\d{4}年|上世纪|历史",
    "resolved": r"救出|脱险|已经?(?:处理|解决|修复|修好|扑灭|恢复)|抢救过来|出院|事后",
    "now": r"现在|目前|正在|今天|今晚|昨天|昨晚|刚才|刚刚|此刻|随时|每天|天天|仍然|至今|依然|还在|持续|马上|立即"
           r"|近日|近期|这几天|最近",
    "request": r"建议|希望|规划|申请|改造|新建|增设|修建|项目|立项|提质|方案|设计",
    "accountability": r"追责|赔偿|说法|追究|索赔|维权|责任",
    "conditional": r"否则|不然|如果不|要是不|若不",
    "people": r"居民|住户|学生|行人|孩子|小孩|老人|村民|业主|群众|人员|家人|一家",
}
_MOD = {k: re.compile(v) for k, v in MODIFIERS.items()}
_SENTENCE_END = re.compile(r"[。！？!?；;\n]")


def _sentence(text, start, end, reach=40):
    a = max([m.end() for m in _SENTENCE_END.finditer(text, 0, start)] or [0])
    m = _SENTENCE_END.search(text, end)
    return text[max(a, start - reach):min(m.start() if m else len(text), end + reach)]


def _context(text, found):
    f = {}
    for c in found:
        if c["negated"] or c["level"] not in ("critical", "urgent"):
            continue
        s = _sentence(text, c["start"], c["end"])
        for k, r in _MOD.items():
            if r.search(s):
                f[f"{c['level']}x{k}"] = f.get(f"{c['level']}x{k}", 0) + 1
    return f


class Data:
    def __init__(self, path, background):
        frame = read_appeals(path).frame
        self.texts = appeal_texts(frame)
        self.y = frame["urgency"].to_numpy(dtype=object)
        self.sampling = frame["sampling"].to_numpy(dtype=object) if "sampling" in frame.columns else None
        self.docs = as_docs(self.texts)
        self.groups = near_duplicate_groups(self.texts)
        lex = mu.default_cues()
        self.found = [lex.find(d.text) for d in self.docs]
        self.cues = lex.features(self.found)
        self.background = background

    def lsa(self):
        """200 LSA dimensions of char TF-IDF fitted on the background texts and these (unsupervised)."""
        if getattr(self, "_lsa", None) is None:
            from sklearn.decomposition import TruncatedSVD

            bgd = as_docs([t for p in self.background for t in appeal_texts(read_appeals(p).frame)] + list(self.texts))
            v = CharNgramTfidf(min_df=3, max_features=100_000).fit(bgd)
            self._lsa = TruncatedSVD(200, random_state=0).fit(v.transform(bgd)).transform(v.transform(self.docs))
        return self._lsa

    def embeddings(self):
        """Frozen multilingual-e5-small embeddings (mean-pooled over up to eight 256-token windows)."""
        if getattr(self, "_emb", None) is None:
            from models.encoder import load_encoder

            self._emb = load_encoder().embed([d.text for d in self.docs], max_tokens=256, long="chunks",
                                             max_chunks=8, progress=True)
        return self._emb

    def folds(self, seed=0):
        return grouped_folds(self.y, self.groups, n_splits=5, random_state=seed)


def _heads(Xtr, ytr, Xte, C=3.0, weight=None):
    hc = LogisticRegression(C=C, class_weight="balanced", solver="liblinear").fit(Xtr, ytr == "critical",
                                                                                 sample_weight=weight)
    hu = LogisticRegression(C=C, class_weight="balanced", solver="liblinear").fit(Xtr, ytr != "routine",
                                                                                 sample_weight=weight)
    return hc.predict_proba(Xte)[:, 1], hu.predict_proba(Xte)[:, 1]


def _ordinal(Xtr, ytr, Xte, C=3.0):
    """Cumulative logit: shared weights, an intercept per threshold (rows duplicated)."""
    o = np.select([ytr == "routine", ytr == "urgent"], [0, 1], 2)
    n = Xtr.shape[0]
    ind = [sp.csr_matrix(np.c_[np.ones(n), np.zeros(n)]), sp.csr_matrix(np.c_[np.zeros(n), np.ones(n)])]
    XX = sp.vstack([sp.hstack([Xtr, ind[0]]), sp.hstack([Xtr, ind[1]])]).tocsr()
    yy = np.r_[o >= 1, o >= 2]
    w = np.r_[[np.where(o >= k, 0.5 / np.mean(o >= k), 0.5 / np.mean(o < k)) for k in (1, 2)]].ravel()  # balanced
    coef = LogisticRegression(C=C, solver="liblinear", fit_intercept=False).fit(XX, yy, sample_weight=w).coef_.ravel()
    z = Xte @ coef[:-2]
    return 1 / (1 + np.exp(-(z + coef[-1]))), 1 / (1 + np.exp(-(z + coef[-2])))


def oof(data: Data, variant: str, seed=0):
    """Out-of-fold (critical score, urgent-or-above score) of one variant."""
    y, n = data.y, len(data.y)
    pc, pu = np.zeros(n), np.zeros(n)
    extra = None
    if variant == "context":
        extra = DictVectorizer().fit_transform([_context(d.text, f) for d, f in zip(data.docs, data.found)])
        extra.data = np.log1p(extra.data)
    if variant.startswith("lsa"):
        extra = sp.csr_matrix(data.lsa() * float(variant[3:]))
    if variant.startswith("embed"):
        extra = sp.csr_matrix(data.embeddings() * float(variant[5:]))
    if variant == "cue-window":
        windows = ["。".join(_sentence(d.text, c["start"], c["end"]) for c in f
                            if not c["negated"] and c["level"] == "critical") for d, f in zip(data.docs, data.found)]
        wdocs = [Doc(w, normalised=True) for w in windows]
    for tr, te in data.folds(seed):
        dtr, dte = [data.docs[i] for i in tr], [data.docs[i] for i in te]
        vec = (WordCharTfidf(max_char_features=50_000) if variant == "words"
               else CharNgramTfidf(min_df=2, max_features=50_000,
                                   max_chars=1500 if variant == "window-1500" else None)).fit(dtr)
        cw = 0.5 if variant == "cue-weight-0.5" else 1.0
        blocks_tr, blocks_te = [vec.transform(dtr), sp.csr_matrix(data.cues[tr] * cw)], \
            [vec.transform(dte), sp.csr_matrix(data.cues[te] * cw)]
        if extra is not None:
            blocks_tr.append(extra[tr])
            blocks_te.append(extra[te])
        if variant == "cue-window":
            wv = CharNgramTfidf(min_df=2, max_features=20_000).fit([wdocs[i] for i in tr if windows[i]])
            blocks_tr.append(wv.transform([wdocs[i] for i in tr]))
            blocks_te.append(wv.transform([wdocs[i] for i in te]))
        Xtr, Xte = sp.hstack(blocks_tr).tocsr(), sp.hstack(blocks_te).tocsr()
        if variant in ("C1", "C10"):
            pc[te], pu[te] = _heads(Xtr, y[tr], Xte, C=float(variant[1:]))
        elif variant == "screen-weight-0.5":
            pc[te], pu[te] = _heads(Xtr, y[tr], Xte, weight=np.where(data.sampling[tr] == "critical-screen", 0.5, 1.0))
        elif variant == "ordinal":
            pc[te], pu[te] = _ordinal(Xtr, y[tr], Xte)
        elif variant == "ordinal+critical-head":
            oc, pu[te] = _ordinal(Xtr, y[tr], Xte)
            pc[te] = 0.5 * oc + 0.5 * _heads(Xtr, y[tr], Xte)[0]
        elif variant == "ridge":
            z = Ridge(alpha=1 / 3).fit(Xtr, np.select([y[tr] == "routine", y[tr] == "urgent"], [0, 1], 2)).predict(Xte)
            pc[te], pu[te] = z, z
        else:
            pc[te], pu[te] = _heads(Xtr, y[tr], Xte)
    return pc, np.maximum(pu, pc)


def oof_trees(data: Data, seed=0):
    """Gradient-boosted trees over cues, cue contexts, LSA and length."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    ctx = DictVectorizer(sparse=False).fit_transform([_context(d.text, f) for d, f in zip(data.docs, data.found)])
    D = np.hstack([data.cues, ctx, data.lsa(), np.log1p([[len(d.text)] for d in data.docs])])
    y, pc, pu = data.y, np.zeros(len(data.y)), np.zeros(len(data.y))
    kw = dict(max_iter=200, learning_rate=0.05, max_leaf_nodes=8, l2_regularization=1.0, random_state=0)
    for tr, te in data.folds(seed):
        hc = HistGradientBoostingClassifier(**kw).fit(D[tr], y[tr] == "critical",
                                                     sample_weight=np.where(y[tr] == "critical", 10.0, 1.0))
        hu = HistGradientBoostingClassifier(**kw).fit(D[tr], y[tr] != "routine")
        pc[te], pu[te] = hc.predict_proba(D[te])[:, 1], hu.predict_proba(D[te])[:, 1]
    return pc, np.maximum(pu, pc)


def oof_finetune(data: Data, seed=0):
    """The encoder fine-tuned on the three levels (3 epochs, 128-token head and tail, no TF-IDF):
    critical score P(critical), urgent-or-above score P(critical) + P(urgent)."""
    from models.neural import FinetuneCategoryClassifier

    pc, pu = np.zeros(len(data.y)), np.zeros(len(data.y))
    for tr, te in tqdm(list(data.folds(seed)), desc="fine-tuning folds"):
        m = FinetuneCategoryClassifier(epochs=3, combine_tfidf=False, max_tokens=128, progress=False,
                                       random_state=seed).fit([data.texts[i] for i in tr], data.y[tr])
        P, cls = m.predict_proba([data.texts[i] for i in te]), list(m.classes_)
        pc[te], pu[te] = P[:, cls.index("critical")], P[:, cls.index("critical")] + P[:, cls.index("urgent")]
    return pc, pu


def scores(y, pc, pu) -> dict:
    crit = y == "critical"
    best = mu.level_thresholds(y, pc, pu)
    return {"critical_auc": round(roc_auc_score(crit, pc), 3),
            "critical_ap": round(average_precision_score(crit, pc), 3),
            "urgent_or_above_auc": round(roc_auc_score(y != "routine", pu), 3), "macro_f1": round(best[0], 3)}


def cue_table(data: Data) -> None:
    """Per critical cue: the appeals of each level on which it fires live; and how many
    critical appeals no live critical cue reaches."""
    live = [{c["cue"] for c in f if c["level"] == "critical" and not c["negated"]} for f in data.found]
    for cue in dict.fromkeys(c.cue for c in mu.default_cues().cues if c.level == "critical"):
        fires = np.array([cue in s for s in live])
        print(f"{cue:8s}", {lev: int((fires & (data.y == lev)).sum()) for lev in mu.LEVELS}, flush=True)
    crit = data.y == "critical"
    print(f"critical appeals without a live critical cue: {sum(not live[i] for i in np.flatnonzero(crit))} "
          f"of {int(crit.sum())}", flush=True)


VARIANTS = ["heads", "C1", "C10", "window-1500", "words", "cue-weight-0.5", "screen-weight-0.5", "ordinal",
            "ordinal+critical-head", "ridge", "context", "cue-window", "lsa1", "lsa3", "embed1", "embed2", "trees", "trees+heads", "finetune", "finetune+heads"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--only", nargs="*", choices=VARIANTS, default=None)
    ap.add_argument("--nested-seeds", nargs="*", type=int, default=[],
                    help="also run the model's nested grouped CV (cross_validate_urgency) with these seeds")
    ap.add_argument("--cues", help="a cue file to use instead of corpora/data/urgency_cues.csv")
    ap.add_argument("--background", nargs="*", default=BACKGROUND, help="unlabelled texts for the LSA variants")
    ap.add_argument("--cue-table", action="store_true",
                    help="also print, per critical cue, the appeals of each level it fires on (live)")
    args = ap.parse_args(argv)
    if args.cues:
        lex = mu.load_cues(args.cues)
        mu.default_cues = lambda: lex  # the model and the keyword grader read cues through this
        import training.urgency as tu

        tu.default_cues = mu.default_cues
    data = Data(args.data, args.background)
    if args.cue_table:
        cue_table(data)
    done = {}
    for name in tqdm(args.only or VARIANTS, desc="variants"):
        if name.endswith("+heads"):
            first = name.split("+")[0]
            a = done.get(first) or (oof_trees(data) if first == "trees" else oof_finetune(data))
            b = done.get("heads") or oof(data, "heads")
            r = lambda x: rankdata(x) / len(x)  # noqa: E731
            pc, pu = (r(a[0]) + r(b[0])) / 2, (r(a[1]) + r(b[1])) / 2
        else:
            pc, pu = (oof_trees(data) if name == "trees" else oof_finetune(data) if name == "finetune"
                      else oof(data, name))
        done[name] = (pc, pu)
        print(f"{name:24s} {scores(data.y, pc, pu)}", flush=True)
    for seed in args.nested_seeds:
        from training.urgency import cross_validate_urgency

        rep = cross_validate_urgency(data.texts, data.y, data.sampling, n_splits=5, random_state=seed, progress=False)
        m = rep["model"]
        out = {"macro_f1": m["macro_f1"], "critical_precision": m["per_class"]["critical"]["precision"],
               "critical_recall": m["critical_recall"], "critical_or_urgent_recall": m["critical_or_urgent_recall"],
               "alert_recall": m["critical_alert"]["recall"], "alert_recall_ci95": m["critical_alert"]["recall_ci95"],
               "keyword_macro_f1": rep["keyword_baseline"]["macro_f1"]}
        if "prevalence_corrected" in rep:
            pcor = rep["prevalence_corrected"]["critical_alert"]
            out.update(alert_fires_on_random_draw=pcor["fires_on_random_draw"],
                       alert_fires_ci95=pcor["fires_on_random_draw_ci95"],
                       macro_f1_prevalence_corrected=rep["prevalence_corrected"]["macro_f1"])
        print(f"nested CV, seed {seed}: {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
