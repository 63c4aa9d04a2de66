"""Storage: rows written through the driver read back as a Core INSERT writes them."""
from datetime import datetime, timedelta, timezone

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
