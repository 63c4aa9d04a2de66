"""`make bench-retrain`: dispatchers' corrections through the API, retraining behind the gate.

On the real labelled message-board appeals (``../shared``), split by near-duplicate
groups into a fixed test set (20%), a starting set (20%) and a pool of corrections (60%):

1. the champion is trained on the starting set; the pool's appeals are ingested through
   ``POST /v1/appeals`` (tagged, stored, no labels);
2. in batches of ``--batch`` (200), reviewers label appeals through
   ``POST /v1/appeals/{id}/labels`` with their true category, either in review-queue order
   (``GET /v1/review-queue``) or at random; after each batch ``POST /v1/models/retrain``
   runs and the gate promotes the challenger or not; the model then live is scored on the
   fixed test set;
3. a poisoned batch (the batch's labels shuffled among its appeals) must be rejected;
4. the reference: a model trained on the starting set plus the whole pool.

Writes var/bench_retrain.json and var/bench_retrain.svg (macro-F1 per batch, both orders).

    python -m training.bench_retrain                    # full pool, one seed
    python -m training.bench_retrain --max-batches 4    # a quick look
    python -m training.bench_retrain --time-full-retrain   # one `suqiu retrain` on all of it, timed
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "corpora" / "tipdm2020c" / "appeals_labelled_dev.csv"
REAL_URGENCY = ROOT.parent / "shared" / "corpora" / "urgency" / "labels_dev.csv"
COLS = ["id", "time", "title", "text", "district"]


def _split(frame: pd.DataFrame, seed: int):
    """(test, start, pool) indices: whole near-duplicate groups, stratified by category."""
    from corpora.records import appeal_texts
    from training.split import grouped_folds, near_duplicate_groups

    groups = near_duplicate_groups(appeal_texts(frame))
    folds = grouped_folds(frame["category"].to_numpy(dtype=object), groups, n_splits=5, random_state=seed)
    test, start = folds[0][1], folds[1][1]
    pool = np.setdiff1d(np.arange(len(frame)), np.concatenate([test, start]))
    return test, start, pool


def _macro_f1(bundle_dir, frame: pd.DataFrame) -> float:
    from corpora.records import appeal_texts
    from models.registry import load_bundle
    from training.retrain import score_category

    model = load_bundle(bundle_dir).models["category"]
    return score_category(model, appeal_texts(frame), frame["category"].to_numpy(dtype=object))["macro_f1"]


def _wait_job(client, headers, job: str, timeout: float = 1800) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        r = client.get(f"/v1/models/retrain/{job}", headers=headers)
        r.raise_for_status()
        rec = r.json()
        if rec["status"] != "running":
            return rec
        time.sleep(1.0)
    raise TimeoutError(f"retrain job {job} still running after {timeout} s")


def _wait_serving(client, version: str, timeout: float = 60) -> float:
    """Seconds until /readyz names ``version``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if client.get("/readyz").json().get("model_version") == version:
            return round(time.monotonic() - t0, 1)
        time.sleep(0.2)
    raise TimeoutError(f"the service did not switch to {version} within {timeout} s")


def run_order(frame, test, start, pool, *, order: str, batch: int, max_batches: int | None, seed: int,
              poison: bool = False, work: Path) -> dict:
    """One simulated reviewing campaign; returns its curve."""
    from fastapi.testclient import TestClient
    from sqlalchemy.orm import sessionmaker

    from models.registry import current_version, promote
    from service.api import create_app
    from service.auth import create_key
    from service.config import Settings
    from service.db import make_engine, upgrade
    from training.train import train_bundle

    work.mkdir(parents=True)
    registry, db = work / "registry", f"sqlite:///{work / 'suqiu.db'}"
    base_file = work / "start.csv"
    frame.iloc[start][COLS + ["category"]].to_csv(base_file, index=False)
    t0 = time.perf_counter()
    b0 = train_bundle(frame.iloc[start].reset_index(drop=True), registry / "v0", evaluate=False, progress=False,
                      version="v0")
    promote(b0.version, by="bench", reason="the starting model", registry=registry)
    log.info("%s: starting model on %d appeals (%.0f s)", order, len(start), time.perf_counter() - t0)
    upgrade(db)
    engine = make_engine(db)
    with sessionmaker(engine)() as s:
        admin = create_key(s, role="admin", name="bench-admin")
    engine.dispose()
    settings = Settings(database_url=db, registry_dir=registry, model_dir=None, hotspots=False,
                        retrain_data=[base_file], model_poll_s=0.5)
    h = {"X-API-Key": admin}
    rng = np.random.default_rng(seed)
    test_frame = frame.iloc[test].reset_index(drop=True)
    curve = [{"labels": 0, "macro_f1": _macro_f1(current_version(registry), test_frame), "version": "v0"}]
    truth = dict(zip(frame["id"].iloc[pool], frame["category"].iloc[pool]))
    with TestClient(create_app(settings)) as client:
        for i in range(0, len(pool), 1000):
            body = {"appeals": json.loads(frame.iloc[pool[i:i + 1000]][COLS].to_json(orient="records",
                                                                                      force_ascii=False))}
            client.post("/v1/appeals", json=body, headers=h).raise_for_status()
        labelled: set = set()
        n_batches = (len(pool) + batch - 1) // batch
        for b in range(min(n_batches, max_batches or n_batches)):
            if order == "queue":
                r = client.get("/v1/review-queue", params={"limit": batch}, headers=h)
                r.raise_for_status()
                ids = [it["id"] for it in r.json()["data"]]
            else:
                left = sorted(set(truth) - labelled)
                ids = list(rng.choice(left, size=min(batch, len(left)), replace=False))
            if not ids:
                break
            labels = [truth[i] for i in ids]
            if poison and b == 0:
                labels = list(rng.permutation(labels))
            for appeal_id, category in zip(ids, labels):
                client.post(f"/v1/appeals/{appeal_id}/labels", json={"category": category, "reason": "bench"},
                            headers=h).raise_for_status()
            labelled |= set(ids)
            t1 = time.perf_counter()
            r = client.post("/v1/models/retrain", headers=h)
            r.raise_for_status()
            rec = _wait_job(client, h, r.json()["job"])
            if rec["status"] != "done":
                raise RuntimeError(f"retrain failed: {rec.get('error')}")
            res = rec["result"]
            live = current_version(registry).name
            swap = _wait_serving(client, live)
            point = {"labels": len(labelled), "macro_f1": _macro_f1(current_version(registry), test_frame),
                     "version": live, "promoted": res["promoted"], "reason": res["reason"],
                     "retrain_seconds": round(time.perf_counter() - t1, 1), "swap_seconds": swap,
                     "heldout": res["heldout"], "suspects": res.get("label_suspects")}
            curve.append(point)
            log.info("%s batch %d: %d labels, live %s macro-F1 %.4f (%s)", order, b + 1, len(labelled), live,
                     point["macro_f1"], res["reason"][:80])
            if poison:
                break
    return {"order": order, "seed": seed, "curve": curve}


def _labels_to_reach(curve, target: float):
    for p in curve:
        if p["macro_f1"] >= target:
            return p["labels"]
    return None


def _figure(results: dict, reference: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from service.digest import cjk_font

    fig, ax = plt.subplots(figsize=(7, 4))
    for run in results["runs"]:
        xs = [p["labels"] for p in run["curve"]]
        ys = [p["macro_f1"] for p in run["curve"]]
        ax.plot(xs, ys, marker="o", ms=3, label=f"{'review queue' if run['order'] == 'queue' else 'random'} "
                                                 f"(seed {run['seed']})")
    ax.axhline(reference, ls="--", color="grey", label="all labels at once")
    ax.set_xlabel("labels given (corrections)")
    ax.set_ylabel("macro-F1 of the live model on the fixed test set")
    ax.set_title("重训练：审核队列顺序 vs 随机顺序", family=cjk_font())
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def time_full_retrain(data: Path, urgency: Path | None, scratch: Path) -> dict:
    """Wall and CPU seconds of ``suqiu retrain`` on the whole real data, as a new user runs
    it: a champion trained on the same files, a database without labels yet."""
    import os
    import subprocess

    from corpora.records import read_appeals
    from models.registry import promote
    from training.train import train_bundle

    registry = scratch / "registry"
    frame = read_appeals(data).frame
    urg = read_appeals(urgency).frame if urgency is not None and urgency.exists() else None
    train_bundle(frame, registry / "champion", urgency_data=urg, evaluate=False, progress=False, version="champion")
    promote("champion", by="bench", registry=registry)
    env = {**os.environ, "SUQIU_REGISTRY_DIR": str(registry), "SUQIU_DATABASE_URL": f"sqlite:///{scratch / 'db.sqlite'}"}
    cmd = [sys.executable, "-m", "service.cli", "retrain", "--data", str(data), "-q"]
    if urg is not None:
        cmd += ["--urgency-data", str(urgency)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-2000:])
    out = json.loads(p.stdout.strip().splitlines()[-1])
    return {"appeals": len(frame), "urgency_labels": 0 if urg is None else len(urg), "wall_seconds": round(wall, 1),
            "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
            "load_1min": round(os.getloadavg()[0], 2), "reported_seconds": out.get("seconds"),
            "label_check_seconds": (out.get("label_suspects") or {}).get("seconds"), "reason": out["reason"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REAL)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--max-batches", type=int, default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--report", type=Path, default=ROOT / "var" / "bench_retrain.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "var" / "bench_retrain.svg")
    ap.add_argument("--time-full-retrain", action="store_true",
                    help="only time one `suqiu retrain` on the whole data (var/bench_retrain_time.json)")
    ap.add_argument("--urgency-data", type=Path, default=REAL_URGENCY)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if not args.data.exists():
        print(f"{args.data}: not found; make bench-retrain needs the real labelled data in ../shared", file=sys.stderr)
        return 0
    if args.time_full_retrain:
        scratch = Path(tempfile.mkdtemp(prefix="suqiu-bench-retrain-"))
        try:
            timing = time_full_retrain(args.data, args.urgency_data, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        path = args.report.with_name("bench_retrain_time.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(timing, ensure_ascii=False, indent=1), encoding="utf-8")
        print(json.dumps(timing, ensure_ascii=False))
        return 0
    from corpora.records import read_appeals
    from training.train import train_bundle

    frame = read_appeals(args.data).frame
    frame = frame[frame["category"].notna()].reset_index(drop=True)
    results: dict = {"data": {"appeals": len(frame)}, "batch": args.batch, "runs": []}
    scratch = Path(tempfile.mkdtemp(prefix="suqiu-bench-retrain-"))  # real texts: never under the repo
    try:
        for seed in args.seeds:
            test, start, pool = _split(frame, seed)
            results["data"].update({"test": len(test), "start": len(start), "pool": len(pool)})
            t0 = time.perf_counter()
            ref = train_bundle(frame.iloc[np.concatenate([start, pool])].reset_index(drop=True),
                               scratch / f"ref-{seed}", evaluate=False, progress=False)
            ref_f1 = _macro_f1(ref.path, frame.iloc[test].reset_index(drop=True))
            results.setdefault("reference", []).append({"seed": seed, "macro_f1": ref_f1,
                                                        "train_seconds": round(time.perf_counter() - t0, 1)})
            log.info("reference (start + whole pool, %d appeals): macro-F1 %.4f", len(start) + len(pool), ref_f1)
            for order in ("queue", "random"):
                run = run_order(frame, test, start, pool, order=order, batch=args.batch,
                                max_batches=args.max_batches, seed=seed, work=scratch / f"{order}-{seed}")
                run["labels_to_reference"] = _labels_to_reach(run["curve"], ref_f1)
                run["labels_to_reference_minus_0.01"] = _labels_to_reach(run["curve"], ref_f1 - 0.01)
                results["runs"].append(run)
            poisoned = run_order(frame, test, start, pool, order="random", batch=args.batch, max_batches=1,
                                 seed=seed, poison=True, work=scratch / f"poison-{seed}")
            results.setdefault("poisoned", []).append(poisoned["curve"][-1])
        results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    _figure(results, float(np.mean([r["macro_f1"] for r in results["reference"]])), args.figure)
    print(f"{'order':8} {'seed':>4} {'to reference':>13} {'to ref-0.01':>12} final")
    for run in results["runs"]:
        print(f"{run['order']:8} {run['seed']:>4} {str(run['labels_to_reference']):>13} "
              f"{str(run['labels_to_reference_minus_0.01']):>12} {run['curve'][-1]['macro_f1']:.4f}")
    for p in results["poisoned"]:
        print(f"poisoned batch: promoted={p['promoted']} ({p['reason']})")
    print(f"wrote {args.report} and {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
