"""Storage operations, keyword-only, used by the API and the CLI."""
from __future__ import annotations

import base64
from contextlib import nullcontext
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Table, delete, exists, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from service.db import Appeal, AuditLog, CityCategory, Label, LabelSuspect, ModelVersion, Prediction, utcnow

__all__ = ["ConflictError", "register_model", "ingest", "list_appeals", "get_detail", "add_labels",
           "encode_cursor", "decode_cursor", "added_categories", "list_added_categories", "add_category",
           "replace_label_suspects", "list_label_suspects", "review_candidates", "parse_source"]


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


# --- taxonomy changes: categories an admin added (ADR 0008) ------------------------------------

def added_categories(session: Session) -> dict[str, str]:
    """The categories an admin added, ``{name: department}`` in the order they were added:
    what retraining may learn beyond the routing data (``Router.with_categories``)."""
    return {c.name: c.department for c in list_added_categories(session)}


def list_added_categories(session: Session) -> list[CityCategory]:
    return list(session.scalars(select(CityCategory).order_by(CityCategory.added_at, CityCategory.name)))


def add_category(session: Session, *, name: str, department: str, added_by: str) -> CityCategory:
    """Add a category (already normalised) to the city's catalogue, audited; raises
    :class:`ConflictError` when it is already there."""
    if session.get(CityCategory, name) is not None:
        raise ConflictError(f"category {name!r} already exists")
    row = CityCategory(name=name, department=department, added_by=added_by, added_at=utcnow())
    session.add(row)
    session.add(AuditLog(actor=added_by, action="category.add", target=name, detail={"department": department}))
    try:
        session.commit()
    except IntegrityError:  # added by another request meanwhile
        session.rollback()
        raise ConflictError(f"category {name!r} already exists") from None
    return row


# --- label suspects of the last retrain (training/label_quality.py) ----------------------------

def parse_source(source) -> tuple[str | None, str | None, int | None]:
    """(appeal_id, source, source_row) of a training row's source: ``appeal:ID`` is an appeal
    in the database; anything else names a base training file's row (``FILE:ROW``; the row
    is parsed when the text after the last ``:`` is a number).

    >>> parse_source("appeal:A-1"), parse_source("train.csv:12"), parse_source(7)
    (('A-1', None, None), (None, 'train.csv:12', 12), (None, '7', 7))
    """
    text = str(source)
    if text.startswith("appeal:"):
        return text[len("appeal:"):], None, None
    tail = text.rsplit(":", 1)[-1]
    return None, text[:255], int(tail) if tail.isascii() and tail.isdigit() and len(tail) < 10 else None


def replace_label_suspects(session: Session, suspects, *, run_id: str | None = None, model_version: str | None = None,
                           field: str = "category") -> str:
    """Store the likely label errors of a retrain (the frame of
    :func:`training.label_quality.find_label_issues`: ``source, given, suggested, score``) in
    place of the previous retrain's, in one transaction; returns the run id (default: the
    time). Suspects of appeals no longer stored are skipped."""
    now = utcnow()
    run_id = run_id or now.strftime("%Y%m%d-%H%M%S-%f")
    rows = []
    for src, given, suggested, score in zip(suspects["source"], suspects["given"], suspects["suggested"],
                                            suspects["score"]):
        appeal_id, source, source_row = parse_source(src)
        rows.append({"run_id": run_id, "appeal_id": appeal_id, "source": source, "source_row": source_row,
                     "field": field, "given": str(given)[:64], "suggested": str(suggested)[:64],
                     "score": float(score), "model_version": model_version, "found_at": now})
    ids = sorted({r["appeal_id"] for r in rows if r["appeal_id"] is not None})
    stored = set()
    for start in range(0, len(ids), 1000):
        stored |= set(session.scalars(select(Appeal.id).where(Appeal.id.in_(ids[start:start + 1000]))))
    rows = [r for r in rows if r["appeal_id"] is None or r["appeal_id"] in stored]
    session.execute(delete(LabelSuspect).where(LabelSuspect.field == field))
    if rows:
        session.execute(insert(LabelSuspect), rows)
    session.commit()
    return run_id


def list_label_suspects(session: Session, *, field: str = "category", offset: int = 0, limit: int = 100):
    """The stored suspects, most likely wrong first (lowest score), with the appeal's title
    and text for those in the database: (rows, whether more follow)."""
    q = (select(LabelSuspect, Appeal.title, Appeal.text)
         .outerjoin(Appeal, Appeal.id == LabelSuspect.appeal_id)
         .where(LabelSuspect.field == field)
         .order_by(LabelSuspect.score, LabelSuspect.id).offset(offset).limit(limit + 1))
    rows = session.execute(q).all()
    return rows[:limit], len(rows) > limit


# --- the review queue's candidates (service/routes/review.py) ---------------------------------

_REVIEW_COLUMNS = (Appeal.seq, Appeal.id, Appeal.title, Appeal.text, Prediction.category, Prediction.confidence,
                   Prediction.scores, Prediction.needs_review, Prediction.urgency, Prediction.cues,
                   Prediction.department, Prediction.topic, Prediction.model_version)


def review_candidates(session: Session, *, uncertain: int, newest: int) -> list:
    """The appeals without a human category label that the review queue scores, each with
    its latest prediction, in arrival order: the ``uncertain`` least confident of those
    flagged for review, and the ``newest`` (new vocabulary arrives with new appeals).

    The first walks the partial index of flagged predictions by confidence
    (``ix_predictions_review_confidence``) and stops after ``uncertain`` hits, instead of
    sorting every stored prediction (at 100,000 appeals: ~10 ms instead of ~800 ms on
    SQLite, ADR 0008); the second walks appeals from the newest. Both read keys only;
    the rows follow by primary key, in chunks.
    """
    from sqlalchemy.orm import aliased

    later = aliased(Prediction)
    unlabelled = ~exists().where(Label.appeal_id == Prediction.appeal_id, Label.field == "category")
    is_latest = Prediction.id == (select(func.max(later.id)).where(later.appeal_id == Prediction.appeal_id)
                                  .correlate(Prediction).scalar_subquery())
    pids = set(session.scalars(select(Prediction.id).where(Prediction.needs_review, is_latest, unlabelled)
                               .order_by(Prediction.confidence, Prediction.id).limit(uncertain)))
    if newest:
        latest = (select(func.max(Prediction.id)).where(Prediction.appeal_id == Appeal.id)
                  .correlate(Appeal).scalar_subquery())
        no_label = ~exists().where(Label.appeal_id == Appeal.id, Label.field == "category")
        pids |= set(session.scalars(select(latest).select_from(Appeal).where(no_label)
                                   .order_by(Appeal.seq.desc()).limit(newest)))
    pids.discard(None)  # an appeal without a prediction (none is stored so, but the column allows it)
    ordered = sorted(pids)
    rows = []
    for start in range(0, len(ordered), 500):
        rows += session.execute(select(*_REVIEW_COLUMNS).join(Prediction, Prediction.appeal_id == Appeal.id)
                                .where(Prediction.id.in_(ordered[start:start + 500]))).all()
    return sorted(rows, key=lambda r: r.seq)
