"""Storage operations, keyword-only, used by the API and the CLI."""
from __future__ import annotations

import base64
from contextlib import nullcontext
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from service.db import Appeal, AuditLog, Label, ModelVersion, Prediction, utcnow

__all__ = ["ConflictError", "register_model", "ingest", "list_appeals", "get_detail", "add_labels",
           "encode_cursor", "decode_cursor"]


class ConflictError(ValueError):
    """An appeal id that is already stored with different content."""


def register_model(session: Session, *, version: str, path: str, manifest: dict) -> None:
    if session.get(ModelVersion, version) is None:
        session.add(ModelVersion(version=version, path=path, manifest=manifest))
        try:
            session.commit()
        except IntegrityError:  # another worker registered it first
            session.rollback()


class _DriverInsert:
    """A multi-row INSERT run through the database driver's ``executemany``.

    The SQL and the value conversions are SQLAlchemy's own (the statement compiled for the
    dialect, each column type's bind processor), so rows read back exactly as a Core
    INSERT would have written them (tests/test_store.py); what is skipped is Core's
    per-statement machinery, which cost ~4× the driver's own time on the service's small
    groups (storing one appeal: ~1.2 vs ~0.3 ms of CPU on SQLite, a one-off timing).
    """

    def __init__(self, table: Table, dialect, columns: tuple[str, ...]):
        compiled = insert(table).compile(dialect=dialect, column_keys=list(columns), for_executemany=True)
        if compiled.escaped_bind_names:
            raise ValueError(f"{table.name}: column names need escaping; use a Core insert")
        self.sql = compiled.string
        self.positional = compiled.positional
        self.keys = list(compiled.positiontup) if compiled.positional else [k for k in columns if k in table.c]
        if set(self.keys) != set(columns):
            raise ValueError(f"{table.name}: the compiled INSERT binds {self.keys}, not {list(columns)}")
        self.procs = [(k, table.c[k].type.dialect_impl(dialect).bind_processor(dialect)) for k in self.keys]

    def __call__(self, conn: Connection, rows: list[dict]) -> None:
        if self.positional:
            params = [tuple(p(r[k]) if p else r[k] for k, p in self.procs) for r in rows]
        else:
            params = [{k: p(r[k]) if p else r[k] for k, p in self.procs} for r in rows]
        cursor = conn.connection.cursor()  # the DBAPI connection of conn's open transaction
        try:
            cursor.executemany(self.sql, params)
        finally:
            cursor.close()


@lru_cache(maxsize=16)
def _driver_insert(table: Table, dialect, columns: tuple[str, ...]) -> _DriverInsert:
    return _DriverInsert(table, dialect, columns)


def _stored_texts(conn: Connection, ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """(text, title) of the appeals among ``ids`` already stored, read through the driver:
    building and running the equivalent Core SELECT cost more than the query itself."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"SELECT id, text, title FROM {Appeal.__tablename__} WHERE id IN ({', '.join([mark] * len(ids))})"
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, ids)
        return {i: (text, title or None) for i, text, title in cursor.fetchall()}
    finally:
        cursor.close()


_APPEAL_COLUMNS = ("id", "time", "title", "text", "district", "user", "channel", "category", "urgency",
                   "needs_review", "received_at")
_PREDICTION_COLUMNS = ("appeal_id", "model_version", "category", "confidence", "scores", "urgency", "urgency_score",
                       "cues", "deadlines", "needs_review", "department", "topic", "created_at")


def _prediction(appeal_id: str, tag: dict) -> dict:
    return dict(appeal_id=appeal_id, model_version=tag["model_version"], category=tag["category"],
                confidence=tag["confidence"], scores=tag["category_scores"], urgency=tag.get("urgency"),
                urgency_score=tag.get("urgency_score"), cues=tag.get("urgency_cues"),
                deadlines=tag.get("deadlines"), needs_review=tag["needs_review"],
                department=tag.get("department"), topic=tag.get("topic"))


def _pipeline(conn: Connection):
    """psycopg's pipeline mode on PostgreSQL: the statements inside go out without waiting
    for each one's result (one round trip for the lot); a no-op on other drivers."""
    driver = conn.connection.driver_connection
    return driver.pipeline() if hasattr(driver, "pipeline") else nullcontext()


def _begin(session: Session | Connection) -> Connection:
    """The connection of ``session``, in a transaction: the driver's statements run in it."""
    conn = session.connection() if isinstance(session, Session) else session
    if not conn.in_transaction():
        conn.begin()
    return conn


def ingest(session: Session | Connection, *, appeals: list[dict], tags: list[dict]) -> list[bool]:
    """Store appeals and their tags in one transaction; return ``created`` per appeal.

    ``session`` may be a Core ``Connection``: the service's ingest path uses one, as the
    ORM session's bookkeeping cost more CPU than the statements (no ORM objects are made).

    Re-sending an id with the same content is a no-op (``created=False``); with
    different content it raises :class:`ConflictError` and nothing is stored.
    Returns only after the commit, so an acknowledged appeal is durable. Rows go in as
    one INSERT per table through the driver's executemany (see :class:`_DriverInsert`),
    not one ORM object per row.

    New ids are the usual case, so they are tried first, without looking up which ids
    exist: on PostgreSQL both INSERTs go out in one pipeline (one round trip, not one per
    statement). An id already stored makes an INSERT fail; the transaction is rolled back
    and the appeals are stored again, looking up the stored ids first.
    """
    ids = [a["id"] for a in appeals]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ConflictError(f"appeal ids repeated within the request: {dup[:5]}")
    try:
        _store(_begin(session), appeals, tags, existing={}, have_pred=set())
        session.commit()
        return [True] * len(appeals)
    except IntegrityError:
        session.rollback()
    conn = _begin(session)
    existing = _stored_texts(conn, ids)
    for a in appeals:
        if a["id"] in existing and existing[a["id"]] != (a["text"], a.get("title") or None):
            raise ConflictError(f"appeal {a['id']!r} already exists with different text; "
                                "send corrections as labels, or use a new id")
    version = tags[0]["model_version"] if tags else None
    have_pred = set()
    if existing and version:
        have_pred = set(session.scalars(select(Prediction.appeal_id).where(
            Prediction.appeal_id.in_(list(existing)), Prediction.model_version == version)))
    _store(conn, appeals, tags, existing=existing, have_pred=have_pred)
    session.commit()
    return [a["id"] not in existing for a in appeals]


def _store(conn: Connection, appeals: list[dict], tags: list[dict], *, existing, have_pred) -> None:
    """INSERT the appeals not in ``existing`` and the predictions of those not in ``have_pred``."""
    now = utcnow()
    new_appeals, predictions = [], []
    for a, tag in zip(appeals, tags):
        if a["id"] not in existing:
            new_appeals.append({**{k: a.get(k) for k in _APPEAL_COLUMNS}, "title": a.get("title") or None,
                                "category": tag["category"], "urgency": tag.get("urgency"),
                                "needs_review": tag["needs_review"], "received_at": now})
        if a["id"] not in have_pred:
            predictions.append({**_prediction(a["id"], tag), "created_at": now})
    try:
        with _pipeline(conn):
            if new_appeals:
                _driver_insert(Appeal.__table__, conn.dialect, _APPEAL_COLUMNS)(conn, new_appeals)
            if predictions:
                _driver_insert(Prediction.__table__, conn.dialect, _PREDICTION_COLUMNS)(conn, predictions)
    except conn.dialect.dbapi.Error as err:  # raised as Core raises it (IntegrityError for a stored id)
        raise DBAPIError.instance(None, None, err, conn.dialect.dbapi.Error, dialect=conn.dialect) from err


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        digits = raw[1:]
        seq = int(digits) if raw.startswith("s") and digits.isascii() and digits.isdigit() and len(raw) < 21 else -1
        if not 0 <= seq < 2 ** 63:  # a database integer
            raise ValueError
        return seq
    except (ValueError, UnicodeDecodeError):
        raise ValueError("cursor is not one this service returned") from None


def list_appeals(session: Session, *, since: datetime | None = None, until: datetime | None = None,
                 category: str | None = None, urgency: str | None = None, district: str | None = None,
                 needs_review: bool | None = None, after_seq: int = 0, limit: int = 100):
    q = select(Appeal).where(Appeal.seq > after_seq)
    if since is not None:
        q = q.where(Appeal.time >= since)
    if until is not None:
        q = q.where(Appeal.time < until)
    for col, val in ((Appeal.category, category), (Appeal.urgency, urgency), (Appeal.district, district),
                     (Appeal.needs_review, needs_review)):
        if val is not None:
            q = q.where(col == val)
    rows = list(session.scalars(q.order_by(Appeal.seq).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].seq) if more and rows else None)


def get_detail(session: Session, *, appeal_id: str):
    row = session.scalar(select(Appeal).where(Appeal.id == appeal_id))
    if row is None:
        return None
    preds = list(session.scalars(select(Prediction).where(Prediction.appeal_id == appeal_id)
                                 .order_by(Prediction.id)))
    labels = list(session.scalars(select(Label).where(Label.appeal_id == appeal_id).order_by(Label.id)))
    return row, preds, labels


def add_labels(session: Session, *, appeal_id: str, changes: dict, reason: str | None, author: str) -> list[Label]:
    """Record a human correction (old → new) and make it the appeal's current tag."""
    row = session.scalar(select(Appeal).where(Appeal.id == appeal_id).with_for_update())
    if row is None:
        raise KeyError(appeal_id)
    out = []
    for field, new in changes.items():
        old = getattr(row, field)
        label = Label(appeal_id=appeal_id, field=field, old_value=old, new_value=new, reason=reason, author=author)
        session.add(label)
        setattr(row, field, new)
        out.append(label)
        session.add(AuditLog(actor=author, action=f"label.{field}", target=appeal_id,
                             detail={"old": old, "new": new, "reason": reason}))
    row.needs_review = False
    session.commit()
    return out
