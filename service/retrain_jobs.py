"""Retraining for the command line and the service: one procedure, one job at a time.

``run_retrain`` is what ``suqiu retrain`` and ``POST /v1/models/retrain`` both do: read the
base training files, the human labels and the categories an admin added from the
database, list likely label errors for review, train and judge a challenger
(training/retrain.py) and promote it or keep it rejected in the registry.

A retrain takes a minute or two, so the service runs it as a job in a background thread.
Jobs live as JSON files in ``<registry>/jobs/`` and one lock file serialises them, so every
worker of ``serve --workers N`` (and ``suqiu retrain`` on the same registry) sees the same
job and never starts a second one.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from service.config import Settings

log = logging.getLogger(__name__)

__all__ = ["RetrainBusy", "run_retrain", "start_job", "read_job", "read_base"]


class RetrainBusy(RuntimeError):
    """Another retrain holds the registry's lock."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_base(paths, *, max_chars: int) -> pd.DataFrame | None:
    """The base training files as one frame, each row's ``source`` its file and data row
    (``train.csv:12``); a file with unusable rows is refused with the rows at fault (the
    training set must be exactly what the files say)."""
    from corpora.records import read_appeals

    frames = []
    for p in paths or []:
        res = read_appeals(p, max_chars=max_chars)
        if res.problems:
            shown = "; ".join(str(x) for x in res.problems[:5])
            raise ValueError(f"{p}: {len(res.problems)} rows cannot be used ({shown}); fix them before retraining")
        frame = res.frame.copy()
        frame["source"] = [f"{Path(p).name}:{row}" for row in res.source_row]  # what a reviewer can look up
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else None


def _lock(registry: Path):
    """An exclusive, non-blocking lock on ``registry/RETRAIN.lock`` (an open file; closing releases it)."""
    registry.mkdir(parents=True, exist_ok=True)
    fh = open(registry / "RETRAIN.lock", "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise RetrainBusy("a retrain is already running on this registry; wait for it to finish") from None
    return fh


def run_retrain(settings: Settings, *, data, urgency_data=None, by: str, progress: bool = True, lock=None) -> dict:
    """Retrain from ``data`` / ``urgency_data`` (paths) plus the database's human labels."""
    from sqlalchemy.orm import Session

    from service import store
    from service.db import make_engine, upgrade
    from training.retrain import human_labels, retrain

    registry = Path(settings.registry_dir)
    held = lock or _lock(registry)
    try:
        base = read_base(data, max_chars=settings.max_text_chars)
        urgency = read_base(urgency_data, max_chars=settings.max_text_chars)
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        try:
            with Session(engine) as s:
                human = human_labels(s)
                categories = store.added_categories(s)

            def keep_suspects(frame, version):
                with Session(engine) as s:
                    store.replace_label_suspects(s, frame, model_version=version)

            return retrain(base, human=human, urgency_base=urgency, registry=registry, by=by,
                           policy=settings.gate_policy(), categories=categories, on_suspects=keep_suspects,
                           progress=progress)
        finally:
            engine.dispose()
    finally:
        if lock is None:
            held.close()


def _job_path(registry: Path, job: str) -> Path:
    if not job.replace("-", "").isalnum():
        raise KeyError(job)
    return registry / "jobs" / f"{job}.json"


def _write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)


def start_job(settings: Settings, *, by: str) -> dict:
    """Start a retrain in a background thread; its record (``running``) at once.

    Raises RetrainBusy when one is running, ValueError when no base data is configured.
    """
    if not settings.retrain_data:
        raise ValueError("no base training data configured: set SUQIU_RETRAIN_DATA (a JSON list of files), "
                         "or run 'suqiu retrain --data FILE'")
    registry = Path(settings.registry_dir)
    lock = _lock(registry)
    job = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]
    record = {"job": job, "status": "running", "by": by, "started": _now(), "pid": os.getpid()}
    path = _job_path(registry, job)
    _write(path, record)

    def work():
        try:
            report = run_retrain(settings, data=settings.retrain_data, urgency_data=settings.retrain_urgency_data,
                                 by=by, progress=False, lock=lock)
            keep = ("champion", "challenger", "promoted", "reason", "rules", "champion_metrics",
                    "challenger_metrics", "heldout", "data", "label_suspects", "seconds")
            _write(path, {**record, "status": "done", "finished": _now(), "result": {k: report.get(k) for k in keep}})
        except Exception as err:  # the job's record says what failed; the service goes on
            log.exception("retrain job %s failed", job)
            _write(path, {**record, "status": "failed", "finished": _now(), "error": f"{type(err).__name__}: {err}"})
        finally:
            lock.close()

    threading.Thread(target=work, name=f"retrain-{job}", daemon=True).start()
    return record


def read_job(settings: Settings, job: str) -> dict:
    """A job's record (KeyError when unknown). A ``running`` job whose process died (the
    lock is free) is reported ``failed``."""
    registry = Path(settings.registry_dir)
    path = _job_path(registry, job)
    if not path.exists():
        raise KeyError(job)
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("status") == "running":
        try:
            fh = _lock(registry)
        except RetrainBusy:
            return record
        try:  # re-read under the lock: the job may have finished meanwhile
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("status") == "running":
                record = {**record, "status": "failed", "error": "interrupted: the process running it stopped"}
                _write(path, record)
        finally:
            fh.close()
    return record
