"""Storage: rows written through the driver read back as a Core INSERT writes them."""
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from service import store
from service.db import Appeal, ModelVersion, Prediction, make_engine, upgrade

TAG = {"model_version": "v1", "category": "城乡建设", "confidence": 0.91, "needs_review": False,
       "category_scores": {"城乡建设": 0.91, "环境保护": 0.09}, "urgency": "urgent", "urgency_score": 0.7,
       "urgency_cues": [{"cue": "停暖", "kind": "basic_need", "start": 2, "end": 4, "match": "不热", "negated": False}],
       "deadlines": {"contact_within_hours": 1.0, "finish_by": "2025-01-09T09:00:00"},
       "department": "市城市管理局(供热办)", "topic": "冬季采暖"}


def _appeal(i):
    return {"id": f"A-{i}", "time": datetime(2025, 1, 6, 9, 0, tzinfo=timezone(timedelta(hours=8))),
            "title": "暖气 😡", "text": "小区暖气不热，家里只有十三度\u3000", "district": "历下区", "user": None,
            "channel": "12345"}


@pytest.fixture
def engine(database_url):
    """An engine on a new, migrated database of each kind."""
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _model_v1(conn):
    conn.execute(insert(ModelVersion.__table__), [{"version": "v1", "path": "x", "manifest": {}}])
    conn.commit()


def _columns(row, table, skip):
    return {c.key: getattr(row, c.key) for c in table.columns if c.key not in skip}


def test_driver_rows_read_back_as_core_rows(engine):
    with engine.connect() as c:
        _model_v1(c)
        assert store.ingest(c, appeals=[_appeal(1)], tags=[TAG]) == [True]  # through the driver
        with engine.connect() as other:  # committed: another connection sees it
            assert other.execute(select(Appeal.id)).scalars().all() == ["A-1"]
        now = datetime.now(timezone.utc)
        c.execute(insert(Appeal.__table__), [{**_appeal(2), "category": TAG["category"], "urgency": TAG["urgency"],
                                             "needs_review": False, "received_at": now}])
        c.execute(insert(Prediction.__table__), [{**store._prediction("A-2", TAG), "created_at": now}])
        c.commit()
    with engine.connect() as c:  # another connection: what was committed
        a1, a2 = c.execute(select(Appeal).order_by(Appeal.seq)).all()
        p1, p2 = c.execute(select(Prediction).order_by(Prediction.id)).all()
        assert _columns(a1, Appeal.__table__, {"seq", "id", "received_at"}) == \
            _columns(a2, Appeal.__table__, {"seq", "id", "received_at"})
        assert _columns(p1, Prediction.__table__, {"id", "appeal_id", "created_at"}) == \
            _columns(p2, Prediction.__table__, {"id", "appeal_id", "created_at"})
        assert p1.scores == TAG["category_scores"] and p1.cues == TAG["urgency_cues"]
        assert type(a1.received_at) is type(a2.received_at)
        assert store.ingest(c, appeals=[_appeal(1)], tags=[TAG]) == [False]  # idempotent
        assert len(c.execute(select(Prediction.id)).all()) == 2


def test_api_bench_runs_in_a_scratch_postgres_database():
    import os

    from sqlalchemy import create_engine, text

    from service.bench import _fresh_postgres

    url = os.environ.get("SUQIU_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("SUQIU_TEST_POSTGRES_URL not set (.ci/run starts a PostgreSQL server and sets it)")
    with _fresh_postgres(url) as (scratch, fresh):
        assert fresh and scratch != url
        name = scratch.rsplit("/", 1)[1]
        upgrade(scratch)
        engine = make_engine(scratch)
        with engine.connect() as c:
            assert c.execute(select(Appeal.id)).all() == []
        engine.dispose()
    admin = create_engine(url)
    with admin.connect() as c:
        assert c.execute(text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}).scalar() == 0
    admin.dispose()


def test_an_id_committed_by_another_writer_meanwhile_is_not_created_twice(engine):
    """The INSERT of an id that another transaction stores first waits for it, fails, and
    the appeal is then stored as a re-send: ``created`` False, one row, its prediction added."""
    import threading
    import time

    with engine.connect() as first, engine.connect() as second:
        first.execute(insert(ModelVersion.__table__), [{"version": "v1", "path": "x", "manifest": {}}])
        first.commit()
        now = datetime.now(timezone.utc)
        first.execute(insert(Appeal.__table__), [{**_appeal(1), "category": TAG["category"], "urgency": None,
                                                  "needs_review": False, "received_at": now}])
        result = {}
        racer = threading.Thread(target=lambda: result.update(
            created=store.ingest(second, appeals=[_appeal(1), _appeal(2)], tags=[TAG, TAG])))
        racer.start()
        time.sleep(0.3)  # the racer's INSERT is now waiting on the first writer's lock
        first.commit()
        racer.join(timeout=30)
        assert result["created"] == [False, True]
        assert sorted(first.execute(select(Appeal.id)).scalars()) == ["A-1", "A-2"]
        assert sorted(first.execute(select(Prediction.appeal_id)).scalars()) == ["A-1", "A-2"]


def test_the_migrations_build_the_schema_the_models_declare(engine):
    """`alembic upgrade head` leaves nothing for autogenerate to add, drop or change."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from service.db import Base

    with engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    assert diff == []


def test_long_texts_are_stored_with_lz4_on_postgresql(engine):
    """Migration 0005: on PostgreSQL (14+, built with lz4, as Debian's is) a text long enough to
    be compressed is compressed with lz4; downgraded, with the server's default again."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    long = "小区暖气不热，家里只有十三度。" * 400  # ~17 KB: compressed
    with engine.begin() as c:
        c.execute(insert(Appeal.__table__), [{"id": "L-1", "text": long}])
        if c.dialect.name != "postgresql":
            return
        assert c.execute(text("SELECT pg_column_compression(text) FROM appeals WHERE id = 'L-1'")).scalar() == "lz4"
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store.__file__).resolve().parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    command.downgrade(cfg, "0004")
    with engine.begin() as c:
        c.execute(insert(Appeal.__table__), [{"id": "L-2", "text": long}])
        default = c.execute(text("SHOW default_toast_compression")).scalar()
        assert c.execute(text("SELECT pg_column_compression(text) FROM appeals WHERE id = 'L-2'")).scalar() == default
    command.upgrade(cfg, "head")


@pytest.mark.parametrize("seq", [0, 1, 9, 99, 100, 12345, 123456, 10 ** 18, 2 ** 63 - 1])
def test_cursors_round_trip_without_padding(seq):
    from service.store import decode_cursor, encode_cursor

    cursor = encode_cursor(seq)
    assert "=" not in cursor and decode_cursor(cursor) == seq


def test_cursors_round_trip_for_every_length():
    from service.store import decode_cursor, encode_cursor

    assert all(decode_cursor(encode_cursor(n)) == n for n in range(1, 5000))


@pytest.mark.parametrize("raw", ["x123", "s+5", "s 5", "s", "s-1", "s" + "0" * 19 + "1", f"s{2 ** 63}", "s١٢"])
def test_cursors_not_made_by_the_service_are_refused(raw):
    import base64

    from service.store import decode_cursor

    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    with pytest.raises(ValueError, match="^cursor is not one this service returned$"):
        decode_cursor(cursor)


def test_pages_end_exactly_and_until_is_exclusive(engine):
    """Three appeals, pages of three: one page and no cursor; an appeal at `until` is out."""
    from sqlalchemy.orm import Session

    appeals = [{**_appeal(i), "time": datetime(2025, 1, 6 + i, 9, 0, tzinfo=timezone.utc)} for i in range(3)]
    with engine.connect() as c:
        _model_v1(c)
        store.ingest(c, appeals=appeals, tags=[TAG] * 3)
    with Session(engine) as s:
        rows, nxt = store.list_appeals(s, limit=3)
        assert [r.id for r in rows] == ["A-0", "A-1", "A-2"] and nxt is None
        rows, nxt = store.list_appeals(s, limit=2)
        assert [r.id for r in rows] == ["A-0", "A-1"] and store.decode_cursor(nxt) == rows[-1].seq
        rows, _ = store.list_appeals(s, until=datetime(2025, 1, 7, 9, 0, tzinfo=timezone.utc))
        assert [r.id for r in rows] == ["A-0"]
        rows, _ = store.list_appeals(s)  # the defaults: from the start, a page of 100
        assert len(rows) == 3


def test_every_prediction_field_is_stored(engine):
    with engine.connect() as c:
        _model_v1(c)
        store.ingest(c, appeals=[_appeal(1)], tags=[TAG])
        p = c.execute(select(Prediction)).one()
    assert (p.model_version, p.category, p.urgency, p.urgency_score, p.department, p.topic, p.needs_review) == (
        "v1", "城乡建设", "urgent", 0.7, "市城市管理局(供热办)", "冬季采暖", False)
    assert p.deadlines == TAG["deadlines"] and p.scores == TAG["category_scores"] and p.cues == TAG["urgency_cues"]


# --- ingest: ids, re-sends, conflicts ---------------------------------------------------

def test_ids_repeated_within_one_request_are_refused_and_nothing_is_stored(engine):
    with engine.connect() as c:
        _model_v1(c)
        with pytest.raises(store.ConflictError, match=r"repeated within the request: \['A-1', 'A-2'\]"):
            store.ingest(c, appeals=[_appeal(1), _appeal(2), _appeal(1), _appeal(3), _appeal(2)],
                         tags=[TAG] * 5)
        c.rollback()
        assert c.execute(select(Appeal.id)).all() == []


def test_a_re_send_with_new_appeals_stores_only_the_new_ones(engine):
    """A re-sent id beside new ones: created [False, True], the stored row untouched, one
    prediction per (appeal, model version); a new model version adds its prediction."""
    with engine.connect() as c:
        _model_v1(c)
        assert store.ingest(c, appeals=[_appeal(1)], tags=[TAG]) == [True]
        assert store.ingest(c, appeals=[_appeal(1), _appeal(2)], tags=[TAG, TAG]) == [False, True]
        assert c.execute(select(Appeal.id).order_by(Appeal.seq)).scalars().all() == ["A-1", "A-2"]
        assert sorted(c.execute(select(Prediction.appeal_id)).scalars()) == ["A-1", "A-2"]
        c.execute(insert(ModelVersion.__table__), [{"version": "v2", "path": "y", "manifest": {}}])
        c.commit()
        v2 = {**TAG, "model_version": "v2", "category": "环境保护"}
        assert store.ingest(c, appeals=[_appeal(1)], tags=[v2]) == [False]
        rows = c.execute(select(Prediction.model_version, Prediction.category)
                         .where(Prediction.appeal_id == "A-1").order_by(Prediction.id)).all()
        assert [tuple(r) for r in rows] == [("v1", "城乡建设"), ("v2", "环境保护")]
        assert c.execute(select(Appeal.category).where(Appeal.id == "A-1")).scalar() == "城乡建设"


@pytest.mark.parametrize("change", [{"text": "另一件事"}, {"title": "另一个标题"}, {"title": None}])
def test_a_re_send_with_different_text_or_title_is_a_conflict(engine, change):
    with engine.connect() as c:
        _model_v1(c)
        store.ingest(c, appeals=[_appeal(1)], tags=[TAG])
        with pytest.raises(store.ConflictError, match="^appeal 'A-1' already exists with different text"):
            store.ingest(c, appeals=[_appeal(2), {**_appeal(1), **change}], tags=[TAG, TAG])
        c.rollback()
        assert c.execute(select(Appeal.id)).scalars().all() == ["A-1"]  # nothing of the request stored


def test_an_empty_title_is_stored_as_none_and_re_sends_match_it(engine):
    with engine.connect() as c:
        _model_v1(c)
        store.ingest(c, appeals=[{**_appeal(1), "title": ""}], tags=[TAG])
        assert c.execute(select(Appeal.title)).scalar() is None
        assert store.ingest(c, appeals=[{**_appeal(1), "title": None}], tags=[TAG]) == [False]


def test_the_appeal_row_carries_the_tags_current_values(engine):
    with engine.connect() as c:
        _model_v1(c)
        before = datetime.now(timezone.utc)
        store.ingest(c, appeals=[_appeal(1)], tags=[{**TAG, "needs_review": True}])
        a = c.execute(select(Appeal)).one()
    assert (a.category, a.urgency, a.needs_review, a.district, a.channel, a.user) == (
        "城乡建设", "urgent", True, "历下区", "12345", None)
    assert a.title == "暖气 😡" and a.text == _appeal(1)["text"]
    assert a.time == datetime(2025, 1, 6, 1, 0, tzinfo=timezone.utc)
    assert before - timedelta(seconds=1) <= a.received_at <= datetime.now(timezone.utc) + timedelta(seconds=1)


def test_register_model_is_idempotent(engine):
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        store.register_model(s, version="v9", path="/m/v9", manifest={"a": 1})
        store.register_model(s, version="v9", path="/elsewhere", manifest={"b": 2})
        rows = s.execute(select(ModelVersion.version, ModelVersion.path, ModelVersion.manifest)).all()
    assert [tuple(r) for r in rows] == [("v9", "/m/v9", {"a": 1})]


# --- listing and filters ------------------------------------------------------------------

def _three(engine):
    tags = [TAG, {**TAG, "category": "环境保护", "urgency": "routine", "needs_review": True},
            {**TAG, "urgency": None}]
    appeals = [{**_appeal(i), "time": datetime(2025, 1, 6 + i, 9, 0, tzinfo=timezone.utc),
                "district": ["历下区", "市中区", "历下区"][i]} for i in range(3)]
    with engine.connect() as c:
        _model_v1(c)
        store.ingest(c, appeals=appeals, tags=tags)


@pytest.mark.parametrize("filters, ids", [
    ({}, ["A-0", "A-1", "A-2"]),
    ({"category": "环境保护"}, ["A-1"]),
    ({"urgency": "urgent"}, ["A-0"]),
    ({"district": "历下区"}, ["A-0", "A-2"]),
    ({"needs_review": True}, ["A-1"]),
    ({"needs_review": False}, ["A-0", "A-2"]),
    ({"since": datetime(2025, 1, 7, 9, 0, tzinfo=timezone.utc)}, ["A-1", "A-2"]),   # since is inclusive
    ({"until": datetime(2025, 1, 7, 9, 0, 1, tzinfo=timezone.utc)}, ["A-0", "A-1"]),
    ({"category": "城乡建设", "district": "历下区", "urgency": "urgent"}, ["A-0"]),
])
def test_list_filters(engine, filters, ids):
    from sqlalchemy.orm import Session

    _three(engine)
    with Session(engine) as s:
        rows, nxt = store.list_appeals(s, **filters)
    assert [r.id for r in rows] == ids and nxt is None


def test_paging_with_a_cursor_walks_every_appeal_once(engine):
    from sqlalchemy.orm import Session

    _three(engine)
    with Session(engine) as s:
        seen, after = [], 0
        for _ in range(5):
            rows, nxt = store.list_appeals(s, after_seq=after, limit=1)
            seen += [r.id for r in rows]
            if nxt is None:
                break
            after = store.decode_cursor(nxt)
    assert seen == ["A-0", "A-1", "A-2"]


# --- detail and labels ----------------------------------------------------------------------

def test_detail_of_an_unknown_appeal_is_none(engine):
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        assert store.get_detail(s, appeal_id="nope") is None


def test_labels_change_the_current_tag_and_leave_an_audit_trail(engine):
    from sqlalchemy.orm import Session

    from service.db import AuditLog, Label

    with engine.connect() as c:
        _model_v1(c)
        store.ingest(c, appeals=[_appeal(1), _appeal(2)], tags=[{**TAG, "needs_review": True}, TAG])
    with Session(engine) as s:
        out = store.add_labels(s, appeal_id="A-1", changes={"category": "环境保护", "urgency": "critical"},
                               reason="看错了", author="alice")
        assert [(l.field, l.old_value, l.new_value) for l in out] == [
            ("category", "城乡建设", "环境保护"), ("urgency", "urgent", "critical")]
        store.add_labels(s, appeal_id="A-1", changes={"category": "城乡建设"}, reason=None, author="bob")
    with Session(engine) as s:
        row, preds, labels = store.get_detail(s, appeal_id="A-1")
        assert (row.category, row.urgency, row.needs_review) == ("城乡建设", "critical", False)
        assert [p.category for p in preds] == ["城乡建设"]
        assert [(l.field, l.old_value, l.new_value, l.reason, l.author) for l in labels] == [
            ("category", "城乡建设", "环境保护", "看错了", "alice"),
            ("urgency", "urgent", "critical", "看错了", "alice"),
            ("category", "环境保护", "城乡建设", None, "bob")]
        audit = s.execute(select(AuditLog.actor, AuditLog.action, AuditLog.target, AuditLog.detail)
                          .order_by(AuditLog.id)).all()
        assert [tuple(a) for a in audit] == [
            ("alice", "label.category", "A-1", {"old": "城乡建设", "new": "环境保护", "reason": "看错了"}),
            ("alice", "label.urgency", "A-1", {"old": "urgent", "new": "critical", "reason": "看错了"}),
            ("bob", "label.category", "A-1", {"old": "环境保护", "new": "城乡建设", "reason": None})]
        other = store.get_detail(s, appeal_id="A-2")
        assert other[2] == [] and other[0].category == "城乡建设"  # the other appeal is untouched
        assert s.execute(select(Label.id)).all() != []


def test_labelling_an_unknown_appeal_raises_key_error(engine):
    from sqlalchemy.orm import Session

    with Session(engine) as s, pytest.raises(KeyError) as err:
        store.add_labels(s, appeal_id="nope", changes={"category": "环境保护"}, reason=None, author="x")
    assert err.value.args == ("nope",)


def test_the_default_page_is_one_hundred(engine):
    from sqlalchemy.orm import Session

    with engine.connect() as c:
        _model_v1(c)
        store.ingest(c, appeals=[_appeal(i) for i in range(101)], tags=[TAG] * 101)
    with Session(engine) as s:
        rows, nxt = store.list_appeals(s)
        assert len(rows) == 100 and store.decode_cursor(nxt) == rows[-1].seq
        rest, end = store.list_appeals(s, after_seq=store.decode_cursor(nxt))
        assert [r.id for r in rest] == ["A-100"] and end is None


def test_lists_are_in_arrival_order_whatever_the_filter(engine):
    """Appeals arrive with times running backwards: a time filter still lists them in arrival
    order (the order cursors page in), not in time order."""
    from sqlalchemy.orm import Session

    appeals = [{**_appeal(i), "time": datetime(2025, 1, 9 - i, 9, 0, tzinfo=timezone.utc)} for i in range(3)]
    with engine.connect() as c:
        _model_v1(c)
        store.ingest(c, appeals=appeals, tags=[TAG] * 3)
    with Session(engine) as s:
        rows, _ = store.list_appeals(s, since=datetime(2025, 1, 1, tzinfo=timezone.utc),
                                     until=datetime(2025, 2, 1, tzinfo=timezone.utc))
        assert [r.id for r in rows] == ["A-0", "A-1", "A-2"]
        rows, _ = store.list_appeals(s, until=datetime(2025, 2, 1, tzinfo=timezone.utc), district="历下区")
        assert [r.id for r in rows] == ["A-0", "A-1", "A-2"]


def test_predictions_are_listed_in_the_order_they_were_made(engine):
    from sqlalchemy.orm import Session

    with engine.connect() as c:
        c.execute(insert(ModelVersion.__table__), [{"version": v, "path": v, "manifest": {}} for v in ("v1", "v2")])
        c.commit()
        store.ingest(c, appeals=[_appeal(1)], tags=[{**TAG, "model_version": "v2"}])
        store.ingest(c, appeals=[_appeal(1)], tags=[TAG])
    with Session(engine) as s:
        _, preds, _ = store.get_detail(s, appeal_id="A-1")
        assert [p.model_version for p in preds] == ["v2", "v1"]


@pytest.mark.parametrize("columns, message", [
    (("a b", "c"), r"^odd: column names need escaping; use a Core insert$"),
    (("c", "zzz"), r"^odd: the compiled INSERT binds \['c'\], not \['c', 'zzz'\]$"),
])
def test_the_driver_insert_refuses_what_it_cannot_bind_exactly(engine, columns, message):
    """The driver path refuses a table whose INSERT it could not run as Core would, rather
    than write wrong rows: column names SQLAlchemy must escape, or columns the table lacks."""
    from sqlalchemy import Column, Integer, MetaData, Table

    odd = Table("odd", MetaData(), Column("a b", Integer), Column("c", Integer))
    with pytest.raises(ValueError, match=message):
        store._DriverInsert(odd, engine.dialect, columns)


def test_repeated_ids_are_named_five_at_most(engine):
    with engine.connect() as c:
        _model_v1(c)
        appeals = [_appeal(i) for i in range(7)] * 2
        with pytest.raises(store.ConflictError, match=r"^appeal ids repeated within the request: "
                                                      r"\['A-0', 'A-1', 'A-2', 'A-3', 'A-4'\]$"):
            store.ingest(c, appeals=appeals, tags=[TAG] * 14)


def test_the_conflict_says_how_to_correct(engine):
    with engine.connect() as c:
        _model_v1(c)
        store.ingest(c, appeals=[_appeal(1)], tags=[TAG])
        with pytest.raises(store.ConflictError, match=r"^appeal 'A-1' already exists with different text; "
                                                      r"send corrections as labels, or use a new id$"):
            store.ingest(c, appeals=[{**_appeal(1), "text": "另一件事"}], tags=[TAG])


def test_ingest_through_an_orm_session_and_a_re_send(engine):
    from sqlalchemy.orm import Session

    with engine.connect() as c:
        _model_v1(c)
    with Session(engine) as s:
        assert store.ingest(s, appeals=[_appeal(1)], tags=[TAG]) == [True]
        assert store.ingest(s, appeals=[_appeal(1), _appeal(2)], tags=[TAG, TAG]) == [False, True]
    with engine.connect() as c:
        assert sorted(c.execute(select(Prediction.appeal_id)).scalars()) == ["A-1", "A-2"]


def test_a_tag_of_an_unregistered_model_version_is_refused(engine):
    from sqlalchemy.exc import IntegrityError

    with engine.connect() as c:
        _model_v1(c)
        with pytest.raises(IntegrityError):
            store.ingest(c, appeals=[_appeal(1)], tags=[{**TAG, "model_version": "v-unknown"}])
        c.rollback()
        assert c.execute(select(Appeal.id)).all() == []


def test_a_scratch_database_is_dropped_with_a_session_of_the_role_still_open():
    import os

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from service.db import create_scratch_database, drop_database

    base = os.environ.get("SUQIU_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("SUQIU_TEST_POSTGRES_URL not set (.ci/run starts a PostgreSQL server and sets it)")
    url = create_scratch_database(base, "t")
    engine = create_engine(url)
    held = engine.connect()
    held.execute(text("SELECT 1"))  # a session left open, as a test's background worker may leave one
    drop_database(url)
    admin = create_engine(make_url(base).set(database="postgres"))
    with admin.connect() as c:
        assert c.execute(text("SELECT count(*) FROM pg_database WHERE datname = :d"),
                         {"d": make_url(url).database}).scalar() == 0
    admin.dispose()
    engine.dispose()
