"""How fast ``GET /v1/review-queue`` answers on a large database (ADR 0008).

Builds a scratch SQLite database of ``--n`` stored appeals (default 100,000) from the texts
of ``--input`` files: each text once, then texts made of the first half of one and the
second half of another, so the copies are not near-duplicates of each other. Every
appeal is tagged by the model (in two processes) and stored as the service stores it;
``--labelled`` of them get a human label, and 2,000 label suspects are stored. Then it
times the queue through the app (TestClient: the HTTP stack without the network), first
and later pages, and the suspect list. Prints timings only, never texts.

    python -m service.bench_review --model models/registry/tipdm \\
        --input ../shared/corpora/tipdm2020c/appeals_labelled_dev.csv \\
        --input ../shared/corpora/tipdm2020c/appeals_unlabelled_hot.csv \\
        --input ../shared/corpora/tipdm2020c/appeals_with_replies.csv
"""
from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)


def _texts(inputs, n: int) -> list[str]:
    from corpora.records import appeal_texts, read_appeals

    base = []
    for path in inputs:
        base += appeal_texts(read_appeals(path).frame)
    base = list(dict.fromkeys(t for t in base if t.strip()))
    out = list(base[:n])
    k = 1
    while len(out) < n:
        for i, t in enumerate(base):
            if len(out) >= n:
                break
            other = base[(i * 7 + k * 131) % len(base)]
            out.append(t[: max(1, len(t) // 2)] + other[len(other) // 2:])
        k += 1
    return out


def main(argv=None) -> int:
    from fastapi.testclient import TestClient
    from sqlalchemy.orm import sessionmaker

    from models.registry import load_bundle
    from models.tagger import tag_in_processes
    from service import store
    from service.api import create_app
    from service.auth import create_key
    from service.config import Settings
    from service.db import make_engine, upgrade

    ap = argparse.ArgumentParser(prog="python -m service.bench_review", description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", action="append", required=True)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--labelled", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--db", default=None, help="a SQLite file to reuse (built when absent)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("service.bench_review %s", vars(args))
    db = Path(args.db) if args.db else Path(tempfile.mkdtemp()) / "review.db"
    url = f"sqlite:///{db}"
    fresh = not db.exists()
    upgrade(url)
    engine = make_engine(url)
    S = sessionmaker(engine)
    bundle = load_bundle(args.model)
    if fresh:
        texts = _texts(args.input, args.n)
        t0 = time.perf_counter()
        tags = tag_in_processes(bundle.path, texts, n_jobs=2)
        log.info("tagged %d appeals in %.0f s", len(texts), time.perf_counter() - t0)
        with S() as s:
            store.register_model(s, version=bundle.version, path=str(bundle.path), manifest=bundle.manifest)
        with engine.connect() as c:
            for start in range(0, len(texts), 1000):
                appeals = [{"id": f"B-{i:06d}", "text": texts[i]} for i in range(start, min(start + 1000, len(texts)))]
                store.ingest(c, appeals=appeals, tags=[{**t, "model_version": bundle.version}
                                                       for t in tags[start:start + 1000]])
        with S() as s:
            for i in range(0, len(texts), max(1, len(texts) // args.labelled)):
                store.add_labels(s, appeal_id=f"B-{i:06d}", changes={"category": tags[i]["category"]}, reason=None,
                                 author="bench")
    with S() as s:
        if not store.list_label_suspects(s, limit=1)[0]:  # a retrain's list: 2,000 suspects, half of them appeals
            import pandas as pd

            n = 2000
            store.replace_label_suspects(s, pd.DataFrame({
                "source": [f"appeal:B-{i * 37 % args.n:06d}" if i % 2 else f"base.csv:{i}" for i in range(n)],
                "given": ["城乡建设"] * n, "suggested": ["环境保护"] * n, "score": [(i % 997) / 997 for i in range(n)]}))
        key = create_key(s, role="analyst", name=f"bench-{time.time_ns()}")
    settings = Settings(database_url=url, model_dir=Path(args.model), hotspots=False)
    with TestClient(create_app(settings)) as client:
        h = {"X-API-Key": key}
        cases = [("limit 50", {"limit": 50}), ("limit 500", {"limit": 500}), ("page 5 of 50", {"pages": 5}),
                 ("suspects 50", {"kind": "suspect"})]
        print(f"{args.n:,} stored appeals ({db}); median of {args.repeat} requests:")
        for name, params in cases:
            seconds = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                if "pages" in params:  # follow the cursor to the fifth page: time the last request only
                    cursor = None
                    for _ in range(params["pages"]):
                        t0 = time.perf_counter()
                        page = {"limit": 50, **({"cursor": cursor} if cursor else {})}
                        r = client.get("/v1/review-queue", params=page, headers=h)
                        cursor = r.json()["next_cursor"]
                else:
                    r = client.get("/v1/review-queue", params=params, headers=h)
                r.raise_for_status()
                seconds.append(time.perf_counter() - t0)
            print(f"  {name:14} {statistics.median(seconds) * 1000:7.0f} ms (min {min(seconds) * 1000:.0f}, "
                  f"max {max(seconds) * 1000:.0f}); {r.json()['count']} items")
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
