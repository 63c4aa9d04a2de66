"""Offline simulation of the review queue's ranking (ADR 0008): labels in queue order vs
at random, retraining the category model after each batch.

A grouped fifth of the labelled data is the test set; a random fifth of the data trains
the starting model; the rest is the pool, whose labels are hidden until "reviewed". Each
round, ``--batch`` pool appeals are labelled in the order of a strategy, the category
model is refitted on everything labelled so far, and its test macro-F1 is recorded. The
reference is the model trained on the whole pool plus the start. No service, no
database: the end-to-end version through the API is ``make bench-retrain``.

    python -m training.review_sim --data ../shared/corpora/tipdm2020c/appeals_labelled_dev.csv
"""
from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np

log = logging.getLogger(__name__)

STRATEGIES = {
    "random": None,
    "margin": {"weights": {"uncertainty": 1.0, "disagreement": 0.0, "novelty": 0.0}, "threshold": 2.0},
    "queue": {"weights": None, "threshold": 0.6},
    "queue-no-dedup": {"weights": None, "threshold": 2.0},
}


def _macro_f1(model, docs, y) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, model.predict(docs), average="macro"))


def simulate(docs, y, *, strategy: str, start, pool, test, batch: int, rounds: int, seed: int, folds: int) -> list:
    from models.category import CategoryClassifier
    from models.review import rank_for_review

    rng = np.random.default_rng(seed)
    labelled = list(start)
    left = list(pool)
    model = CategoryClassifier(calibration_folds=folds).fit([docs[i] for i in labelled], y[labelled])
    curve = [{"labels": 0, "macro_f1": _macro_f1(model, [docs[i] for i in test], y[test])}]
    for _ in range(rounds):
        if not left:
            break
        if strategy == "random":
            pick = list(rng.choice(left, size=min(batch, len(left)), replace=False))
        else:
            spec = STRATEGIES[strategy]
            ranked = rank_for_review(model, [docs[i] for i in left], weights=spec["weights"],
                                     threshold=spec["threshold"], k=batch)
            pick = [left[i] for i in ranked["index"]]
        labelled += pick
        chosen = set(pick)
        left = [i for i in left if i not in chosen]
        model = CategoryClassifier(calibration_folds=folds).fit([docs[i] for i in labelled], y[labelled])
        curve.append({"labels": len(labelled) - len(start),
                      "macro_f1": _macro_f1(model, [docs[i] for i in test], y[test])})
        log.info("%s: %d labels, macro-F1 %.4f", strategy, curve[-1]["labels"], curve[-1]["macro_f1"])
    return curve


def main(argv=None) -> int:
    from corpora.records import appeal_texts, read_appeals
    from models.category import CategoryClassifier
    from models.doc import as_docs
    from training.split import grouped_folds, near_duplicate_groups

    ap = argparse.ArgumentParser(prog="python -m training.review_sim", description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=3, help="the category model's calibration folds")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--report", default=None, help="write the curves as JSON here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("training.review_sim %s", vars(args))
    frame = read_appeals(args.data).frame
    frame = frame[frame["category"].notna()].reset_index(drop=True)
    docs = as_docs(appeal_texts(frame))
    y = frame["category"].to_numpy(dtype=object)
    groups = near_duplicate_groups([d.text for d in docs])
    rest, test = grouped_folds(y, groups, n_splits=5, random_state=args.seed)[0]
    rng = np.random.default_rng(args.seed)
    rest = rng.permutation(rest)
    start, pool = rest[:len(y) // 5], rest[len(y) // 5:]
    t0 = time.perf_counter()
    full = CategoryClassifier(calibration_folds=args.folds).fit([docs[i] for i in rest], y[rest])
    reference = _macro_f1(full, [docs[i] for i in test], y[test])
    print(f"{len(y)} appeals: start {len(start)}, pool {len(pool)}, test {len(test)}; "
          f"reference (start + whole pool) macro-F1 {reference:.4f} ({time.perf_counter() - t0:.0f} s)")
    report = {"reference": reference, "start": len(start), "pool": len(pool), "test": len(test), "curves": {}}
    for name in args.strategies.split(","):
        curve = simulate(docs, y, strategy=name, start=start, pool=pool, test=test, batch=args.batch,
                         rounds=args.rounds, seed=args.seed, folds=args.folds)
        report["curves"][name] = curve
        reach = next((p["labels"] for p in curve if p["macro_f1"] >= reference), None)
        reach01 = next((p["labels"] for p in curve if p["macro_f1"] >= reference - 0.01), None)
        print(f"{name:15} " + " ".join(f"{p['macro_f1']:.3f}" for p in curve)
              + f"  | labels to reference: {reach}; to reference - 0.01: {reach01}")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
