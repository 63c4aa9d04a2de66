"""The category backends side by side on grouped cross-validation of the real appeals (issue 17).

One run, the same grouped folds (training/split.py: near-duplicates kept together) for
every backend: ``baseline`` (char TF-IDF + LinearSVC, training/evaluate.py), ``tfidf``
(today's CategoryClassifier), ``embed`` and ``finetune`` (models/neural.py). Per backend:
pooled out-of-fold macro-F1 and accuracy, training minutes and CPU minutes a fold, and on
the first fold's model: batch appeals/s (one process), single-appeal p50/p99 latency, peak
memory. Figures only: no text of the corpus is printed or written.

Every fold is written to ``--work DIR`` as soon as it finishes (predictions by row index,
timings, the 1-minute load), so a long backend can run fold by fold in separate commands
(``--fold K``), each well under 20 minutes, and ``--summarise`` pools what is there::

    python -m training.bench_backends --backends baseline tfidf --folds 3
    python -m training.bench_backends --backends embed --folds 3
    python -m training.bench_backends --backends finetune --folds 3 --fold 0 --finetune-budget-s 600
    python -m training.bench_backends --summarise --folds 3 --report var/bench_backends.json

``--long-study`` compares what the encoder reads of a long appeal (head, head + tail,
chunk pooling), frozen embeddings alone and stacked with TF-IDF, on the same folds.
Frozen embeddings are memoised in ``--work`` (keyed by a hash of the text, no text
stored), so folds and runs do not embed an appeal twice; speed is always measured without
the memo.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import pickle
import resource
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["main", "run_backend_fold", "summarise"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "corpora" / "tipdm2020c" / "appeals_labelled_dev.csv"


def _load(data):
    from corpora.records import appeal_texts, read_appeals

    frame = read_appeals(data).frame
    frame = frame[frame["category"].notna()].reset_index(drop=True)
    return appeal_texts(frame), frame["category"].to_numpy(dtype=object)


def _folds(texts, y, n_splits, random_state):
    from training.split import grouped_folds, near_duplicate_groups

    return grouped_folds(y, near_duplicate_groups(texts), n_splits=n_splits, random_state=random_state)


class _Memo(dict):
    """The encoder's embedding memo, persisted by text hash (no text kept)."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        if path.exists():
            with open(path, "rb") as fh:
                self.update(pickle.load(fh))

    @staticmethod
    def _k(key):
        cfg, text = key
        return (cfg, hashlib.sha1(text.encode()).hexdigest())

    def __contains__(self, key):
        return super().__contains__(self._k(key))

    def __getitem__(self, key):
        return super().__getitem__(self._k(key))

    def __setitem__(self, key, value):
        super().__setitem__(self._k(key), value)

    def save(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(dict(self), fh)
        tmp.replace(self.path)


def make_model(backend: str, args):
    from models.neural import EmbedCategoryClassifier, FinetuneCategoryClassifier
    from training.evaluate import baseline_classifier

    if backend == "baseline":
        return baseline_classifier()
    if backend == "tfidf":
        from models.category import CategoryClassifier

        return CategoryClassifier(random_state=args.seed)
    if backend == "embed":
        return EmbedCategoryClassifier(long=args.embed_long, max_tokens=args.embed_max_tokens,
                                       combine=args.embed_combine, random_state=args.seed)
    if backend == "finetune":
        return FinetuneCategoryClassifier(max_tokens=args.finetune_max_tokens, epochs=args.finetune_epochs,
                                          time_budget_s=args.finetune_budget_s, random_state=args.seed,
                                          train_layers=args.finetune_train_layers,
                                          batch_size=args.finetune_batch_size, progress=args.progress,
                                          checkpoint_dir=args.work / f"ckpt-finetune-{args.fold_now}")
    raise ValueError(f"unknown backend {backend!r}")


def _speed(model, texts, *, n_batch=500, n_single=200) -> dict:
    """Batch appeals/s (one process, chunks of 500 as the tagger gets them) and single-appeal
    latency, timed as the tagger calls the model (Docs: normalised once)."""
    from models.doc import as_docs
    from training.bench import nearest_rank

    def tag(batch):
        docs = as_docs(batch)
        if hasattr(model, "needs_review"):
            model.needs_review(model.predict_proba(docs))
        else:
            model.predict([d.text for d in docs])

    tag(texts[:8])  # warm up
    batch = texts[:n_batch]
    c0, t0 = time.process_time(), time.perf_counter()
    for s in range(0, len(batch), 500):
        tag(batch[s:s + 500])
    wall = time.perf_counter() - t0
    lat = []
    for t in texts[:n_single]:
        t1 = time.perf_counter()
        tag([t])
        lat.append((time.perf_counter() - t1) * 1000)
    return {"batch_appeals_per_s": round(len(batch) / wall, 1),
            "batch_cpu_ms_per_appeal": round(1000 * (time.process_time() - c0) / len(batch), 2),
            "single_p50_ms": round(nearest_rank(lat, 0.5), 1), "single_p99_ms": round(nearest_rank(lat, 0.99), 1),
            "n_batch": len(batch), "n_single": len(lat), "load_1min": round(os.getloadavg()[0], 2)}


def run_backend_fold(backend, k, texts, y, folds, args) -> dict:
    import joblib

    from models.encoder import load_encoder

    tr, te = folds[k]
    args.fold_now = k
    model = make_model(backend, args)
    memo = None
    if backend == "embed":
        memo = _Memo(args.work / "embed_memo.pkl")
        load_encoder().memo = memo
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load0 = os.getloadavg()[0]
    c0, t0 = time.process_time(), time.perf_counter()
    model.fit([texts[i] for i in tr], y[tr])
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    if memo is not None:
        memo.save()
    test = [texts[i] for i in te]
    t1 = time.perf_counter()
    if hasattr(model, "predict_proba") and backend != "baseline":
        proba = model.predict_proba(test)
        pred = model.classes_[proba.argmax(1)]
        flagged = model.needs_review(proba)
        conf = proba.max(1)
    else:
        pred, flagged, conf = model.predict(test), np.zeros(len(te), bool), np.ones(len(te))
    predict_s = time.perf_counter() - t1
    if memo is not None:
        memo.save()
    out = {"backend": backend, "fold": k, "n_train": int(len(tr)), "n_test": int(len(te)),
           "test_index": te.tolist(), "pred": [str(p) for p in pred], "flagged": flagged.tolist(),
           "confidence": np.round(conf, 4).tolist(),
           "fit_minutes": round(fit_s / 60, 2), "fit_cpu_minutes": round(fit_cpu / 60, 2),
           "predict_test_s": round(predict_s, 1), "load_1min_start": round(load0, 2),
           "load_1min_end": round(os.getloadavg()[0], 2),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "peak_rss_before_fit_mb": round(rss0, 1)}
    for attr in ("weights_", "review_threshold_", "validation_macro_f1_", "train_steps_"):
        if hasattr(model, attr):
            v = getattr(model, attr)
            out[attr.rstrip("_")] = v.tolist() if isinstance(v, np.ndarray) else v
    if k == 0 or args.speed_every_fold:
        if memo is not None:
            load_encoder().memo = None
        out["speed"] = _speed(model, test)
        if args.speed_threads:
            import torch

            by = {}
            for th in args.speed_threads:
                torch.set_num_threads(th)
                by[str(th)] = _speed(model, test)
            torch.set_num_threads(args.threads)
            out["speed_by_threads"] = by
        path = args.work / f"{backend}-model.joblib"
        joblib.dump(model, path, compress=3)
        out["pickled_mb"] = round(path.stat().st_size / 2**20, 1)
        path.unlink()
    (args.work / f"{backend}-fold{k}.json").write_text(json.dumps(out), encoding="utf-8")
    log.info("%s fold %d: macro-F1 %.4f, fit %.1f min", backend, k, _macro_f1(y[te], pred), fit_s / 60)
    return out


def _macro_f1(y, pred) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="macro"))


def summarise(texts, y, args) -> dict:
    rows = {}
    for backend in ("baseline", "tfidf", "embed", "finetune"):
        parts = [json.loads(p.read_text(encoding="utf-8"))
                 for p in sorted(args.work.glob(f"{backend}-fold*.json"))]
        if not parts:
            continue
        idx = np.concatenate([p["test_index"] for p in parts])
        pred = np.concatenate([p["pred"] for p in parts]).astype(object)
        flagged = np.concatenate([p["flagged"] for p in parts]).astype(bool)
        yy = y[idx]
        row = {"folds_done": sorted(p["fold"] for p in parts), "n": int(len(idx)),
               "macro_f1": round(_macro_f1(yy, pred), 4), "accuracy": round(float((pred == yy).mean()), 4),
               "per_fold_macro_f1": [round(_macro_f1(y[p["test_index"]], np.array(p["pred"], dtype=object)), 4)
                                     for p in parts],
               "fit_minutes_per_fold": round(float(np.mean([p["fit_minutes"] for p in parts])), 2),
               "fit_cpu_minutes_per_fold": round(float(np.mean([p["fit_cpu_minutes"] for p in parts])), 2),
               "load_1min": [p["load_1min_start"] for p in parts],
               "peak_rss_mb": max(p["peak_rss_mb"] for p in parts)}
        if backend != "baseline":
            row["share_flagged"] = round(float(flagged.mean()), 4)
            row["accuracy_not_flagged"] = round(float((pred == yy)[~flagged].mean()), 4) if (~flagged).any() else None
        for p in parts:
            if "speed" in p:
                row["speed"] = p["speed"]
                if "speed_by_threads" in p:
                    row["speed_by_threads"] = p["speed_by_threads"]
                row["pickled_mb"] = p.get("pickled_mb")
        for extra in ("weights", "train_steps", "validation_macro_f1"):
            vals = [p[extra] for p in parts if extra in p]
            if vals:
                row[extra] = vals
        rows[backend] = row
    report = {"data": {"n": int(len(y)), "folds": args.folds, "seed": args.seed,
                       "grouping": "near-duplicate groups (training/split.py)"}, "backends": rows}
    return report


def long_study(texts, y, folds, args) -> dict:
    """Frozen embeddings: what to read of a long appeal, alone and stacked with TF-IDF."""
    from sklearn.linear_model import LogisticRegression

    from models.category import _align, _softmax
    from models.encoder import load_encoder
    from models.neural import fit_weights

    enc = load_encoder()
    memo = _Memo(args.work / "embed_memo.pkl")
    enc.memo = memo
    from corpora.text import normalise
    from models.features import WordCharTfidf
    from sklearn.svm import LinearSVC

    norm = [normalise(t) for t in texts]
    classes = np.unique(y)
    y_idx = np.searchsorted(classes, y)
    tfidf_oof = np.zeros((len(y), len(classes)))
    for tr, te in folds:
        feats = WordCharTfidf(max_chars=1500)
        F = feats.fit_transform([norm[i] for i in tr])
        svm = LinearSVC(class_weight="balanced", random_state=0).fit(F, y[tr])
        tfidf_oof[te] = _align(svm.decision_function(feats.transform([norm[i] for i in te])), svm.classes_, classes)
    out = {"tfidf_alone": round(_macro_f1(y, classes[tfidf_oof.argmax(1)]), 4)}
    variants = {"head_128": dict(max_tokens=128, long="head"),
                "head_tail_128": dict(max_tokens=128, long="head_tail", tail_tokens=32),
                "chunks_128x8": dict(max_tokens=128, long="chunks", max_chunks=8),
                "head_512": dict(max_tokens=512, long="head")}
    for name in args.long_variants:
        cfg = variants[name]
        c0, t0 = time.process_time(), time.perf_counter()
        E = enc.embed(norm, progress=args.progress, **cfg)
        memo.save()
        embed_s, embed_cpu = time.perf_counter() - t0, time.process_time() - c0
        oof = np.zeros((len(y), len(classes)))
        for tr, te in folds:
            h = LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000).fit(E[tr], y[tr])
            oof[te] = _align(h.decision_function(E[te]), h.classes_, classes)
        # stacking weights fitted on the pooled out-of-fold scores (optimistic by two parameters)
        w = fit_weights([tfidf_oof, oof], y_idx)
        stacked = _softmax(w[0] * tfidf_oof + w[1] * oof)
        out[name] = {"embeddings_alone": round(_macro_f1(y, classes[oof.argmax(1)]), 4),
                     "stacked_with_tfidf": round(_macro_f1(y, classes[stacked.argmax(1)]), 4),
                     "weights": np.round(w, 3).tolist(), "embed_minutes": round(embed_s / 60, 2),
                     "embed_cpu_minutes": round(embed_cpu / 60, 2), "load_1min": round(os.getloadavg()[0], 2)}
        log.info("%s: %s", name, out[name])
        (args.work / "long_study.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--backends", nargs="+", default=["baseline", "tfidf", "embed", "finetune"],
                   choices=["baseline", "tfidf", "embed", "finetune"])
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--fold", type=int, nargs="*", help="only these folds (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=ROOT / "var" / "bench_backends")
    p.add_argument("--report", type=Path, help="write the summary here (JSON)")
    p.add_argument("--summarise", action="store_true", help="only pool the folds already in --work")
    p.add_argument("--long-study", action="store_true")
    p.add_argument("--long-variants", nargs="+", default=["head_128", "head_tail_128", "chunks_128x8"])
    p.add_argument("--embed-long", default="head_tail")
    p.add_argument("--embed-max-tokens", type=int, default=128)
    p.add_argument("--embed-combine", default="concat", choices=["concat", "stack"])
    p.add_argument("--finetune-max-tokens", type=int, default=128)
    p.add_argument("--finetune-epochs", type=float, default=2.0)
    p.add_argument("--finetune-budget-s", type=float, default=None)
    p.add_argument("--finetune-train-layers", type=int, default=None)
    p.add_argument("--finetune-batch-size", type=int, default=16)
    p.add_argument("--speed-every-fold", action="store_true")
    p.add_argument("--speed-threads", type=int, nargs="*", help="also time the first fold's model with "
                   "these torch thread counts")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared 2-core machine two threads spin-wait on each other)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log.info("arguments: %s", vars(args))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    texts, y = _load(args.data)
    folds = _folds(texts, y, args.folds, args.seed)
    if args.long_study:
        print(json.dumps(long_study(texts, y, folds, args), indent=2))  # noqa: T201 - a command's output
        return 0
    if not args.summarise:
        for backend in args.backends:
            for k in args.fold if args.fold is not None else range(args.folds):
                run_backend_fold(backend, k, texts, y, folds, args)
    report = summarise(texts, y, args)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(report, ensure_ascii=False, indent=2))  # noqa: T201 - a command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
