"""Storage: SQLAlchemy 2 tables (migrated by Alembic) and the engine factory.

SQLite (WAL mode) is the embedded default; PostgreSQL is selected by
``SUQIU_DATABASE_URL=postgresql+psycopg://…``.
"""
from __future__ import annotations

import fcntl
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import (JSON, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        TypeDecorator, create_engine, event)
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "Appeal", "Prediction", "Label", "ModelVersion", "ApiKey", "AuditLog", "LabelSuspect",
           "CityCategory", "make_engine",
           "WriteLock", "upgrade", "utcnow", "localize", "Instant", "sqlite_path", "create_scratch_database",
           "drop_database"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def localize(value: datetime | None, zone: str) -> datetime | None:
    """``value`` on the hotline's clock (``zone``, ``SUQIU_TIMEZONE``): a naive time is taken
    as a wall-clock time there; an aware one is converted to it (the same instant), so that
    deadlines read in local time.

    >>> localize(datetime(2025, 1, 6, 9, 0), "Asia/Shanghai").isoformat()
    '2025-01-06T09:00:00+08:00'
    >>> localize(datetime(2025, 1, 6, 1, 0, tzinfo=timezone.utc), "Asia/Shanghai").isoformat()
    '2025-01-06T09:00:00+08:00'
    """
    from zoneinfo import ZoneInfo

    if value is None:
        return None
    return value.replace(tzinfo=ZoneInfo(zone)) if value.tzinfo is None else value.astimezone(ZoneInfo(zone))


class Instant(TypeDecorator):
    """A point in time, stored in UTC and read back aware (UTC) on every database.

    PostgreSQL's ``timestamptz`` keeps the instant; SQLite stores text and would drop the
    offset (``10:20+08:00`` and ``02:20Z``, the same instant, stored 8 hours apart), so
    the value is converted to UTC first. Callers give aware values (:func:`localize`); a
    naive one is taken as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class Appeal(Base):
    """The canonical appeal record; ``id`` is the caller's id, so re-sending is idempotent."""
    __tablename__ = "appeals"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)  # arrival order; cursors
    id: Mapped[str] = mapped_column(String(128), unique=True)
    time: Mapped[datetime | None] = mapped_column(Instant(), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    district: Mapped[str | None] = mapped_column(String(64), index=True)
    user: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64), index=True)   # current: latest label or prediction
    urgency: Mapped[str | None] = mapped_column(String(16), index=True)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    received_at: Mapped[datetime] = mapped_column(Instant(), default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    manifest: Mapped[dict] = mapped_column(JSON)
    first_seen: Mapped[datetime] = mapped_column(Instant(), default=utcnow)


class Prediction(Base):
    """One model version's tags for one appeal; kept per version, never overwritten."""
    __tablename__ = "predictions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # looked up by the unique (appeal_id, model_version) index below; no index of its own
    appeal_id: Mapped[str] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(ForeignKey("model_versions.version"))
    category: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    scores: Mapped[dict] = mapped_column(JSON)
    urgency: Mapped[str | None] = mapped_column(String(16))
    urgency_score: Mapped[float | None] = mapped_column(Float)
    cues: Mapped[list | None] = mapped_column(JSON)
    deadlines: Mapped[dict | None] = mapped_column(JSON)
    needs_review: Mapped[bool] = mapped_column(Boolean)
    department: Mapped[str | None] = mapped_column(String(128))
    topic: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Instant(), default=utcnow)
    __table_args__ = (Index("uq_prediction_version", "appeal_id", "model_version", unique=True),
                      # the review queue's least confident first (ADR 0008): flagged predictions only, so
                      # ingest pays for this index on the ~quarter of appeals flagged for review, not on all
                      Index("ix_predictions_review_confidence", "confidence", sqlite_where=sql_text("needs_review = 1"),
                            postgresql_where=sql_text("needs_review")))


class Label(Base):
    """A human correction: who, when, old → new, why."""
    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    appeal_id: Mapped[str] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(16))  # category | urgency
    old_value: Mapped[str | None] = mapped_column(String(64))
    new_value: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(Instant(), default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(Instant(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(Instant())


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(Instant(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict | None] = mapped_column(JSON)


class LabelSuspect(Base):
    """A likely label error found by the last retrain (training/label_quality.py), listed for
    review and never dropped: an appeal in the database (``appeal_id``) or a row of a base
    training file (``source``: file and row)."""
    __tablename__ = "label_suspects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)  # the retrain that found it
    appeal_id: Mapped[str | None] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    source: Mapped[str | None] = mapped_column(String(255))
    source_row: Mapped[int | None] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(16))  # category (urgency later)
    given: Mapped[str] = mapped_column(String(64))
    suggested: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)  # cleanlab's label quality, 0-1: low = likely wrong
    model_version: Mapped[str | None] = mapped_column(String(64))  # the challenger trained with it, if known
    found_at: Mapped[datetime] = mapped_column(Instant(), default=utcnow)
    __table_args__ = (CheckConstraint("appeal_id IS NOT NULL OR source IS NOT NULL", name="ck_label_suspects_origin"),)


class CityCategory(Base):
    """A first-level category an admin added to the city's catalogue (beyond the routing
    data), with its department: labels may use it, retraining learns it."""
    __tablename__ = "city_categories"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    department: Mapped[str] = mapped_column(String(128))
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(Instant(), default=utcnow)


def sqlite_path(url: str) -> str | None:
    """The file behind a SQLite URL; None for other databases and in-memory SQLite.

    >>> sqlite_path("sqlite:///var/suqiu.db"), sqlite_path("sqlite://"), sqlite_path("postgresql://h/db")
    ('var/suqiu.db', None, None)
    """
    u = make_url(url)
    return u.database if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:") else None


def create_scratch_database(url: str, prefix: str) -> str:
    """Create an empty database named ``<prefix>_<random>`` on the PostgreSQL server of
    ``url`` (the role needs CREATEDB) and return its URL; :func:`drop_database` removes it."""
    import uuid

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, *, attempts: int = 50) -> None:
    """Drop the database of ``url``, connecting to the server's ``postgres`` database.

    The role's own sessions on it are ended first; then a plain ``DROP DATABASE``, which
    also cancels an autovacuum worker busy there. ``WITH (FORCE)`` would have to end that
    worker, a superuser's process, which a role without ``pg_signal_backend`` may not: an
    occasional failure. A session that connects in between is ended on the next attempt."""
    import time

    from sqlalchemy.exc import DBAPIError

    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            for attempt in range(attempts):
                c.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                                  "AND pid <> pg_backend_pid() AND usename = current_user", (u.database,))
                try:
                    c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{u.database}"')
                    return
                except DBAPIError as err:
                    in_use = getattr(err.orig, "sqlstate", None) == "55006"  # object_in_use
                    if not in_use or attempt == attempts - 1:
                        raise
                    time.sleep(0.1)
    finally:
        admin.dispose()


def private_sqlite_file(url: str) -> None:
    """Create a SQLite database file (and its folder) readable by this user only: it holds
    appeal texts, phone numbers and key hashes (SQLite gives its -wal and -shm files the
    database file's mode). Other databases: nothing to do."""
    path = sqlite_path(url)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # an acknowledged appeal survives a crash
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
        return engine
    return create_engine(url, pool_size=20, max_overflow=10, pool_pre_ping=True)


class WriteLock:
    """Serialise writers to one SQLite file across threads and worker processes.

    SQLite admits one writer at a time, and a writer that finds the file locked sleeps
    in SQLite's busy handler in growing steps (1, 2, 5, 10 … 100 ms), so two workers'
    commits colliding cost tens of milliseconds. Writers queue here instead, on a thread
    lock and an OS file lock (``<database>-writelock``), and go as soon as it is free.
    For other databases (PostgreSQL has row locks) it is a no-op. Open it in the process
    that uses it (after a fork), e.g. in the app's lifespan.
    """

    def __init__(self, url: str):
        self._thread = threading.Lock()
        self._fd = None
        path = sqlite_path(url)
        if path:
            self._fd = os.open(f"{path}-writelock", os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self):
        self._thread.acquire()
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread.release()

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the latest Alembic revision."""
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)  # before the import: it logs its plugins

    from alembic import command
    from alembic.config import Config

    private_sqlite_file(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")
