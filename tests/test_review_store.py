"""Storage of label suspects and added categories (migration 0004, service/store.py), and
the review queue's candidate query, on SQLite (and PostgreSQL when SUQIU_TEST_POSTGRES_URL
is set)."""
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import inspect, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service import store
from service.db import Appeal, AuditLog, CityCategory, LabelSuspect, ModelVersion, make_engine, upgrade

TAG = {"model_version": "v1", "category": "城乡建设", "confidence": 0.9, "needs_review": False,
       "category_scores": {"城乡建设": 0.9, "环境保护": 0.1}, "department": "市住房和城乡建设局", "topic": None}


def _alembic(url):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store.__file__).resolve().parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@pytest.fixture
def engine(database_url):
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _stored(engine, n, *, confidence=lambda i: 0.9, flagged=lambda i: False):
    with engine.connect() as c:
        c.execute(insert(ModelVersion.__table__), [{"version": "v1", "path": "x", "manifest": {}}])
        c.commit()
        store.ingest(c, appeals=[{"id": f"A-{i}", "text": f"第{i}件诉求"} for i in range(n)],
                     tags=[{**TAG, "confidence": confidence(i), "needs_review": flagged(i)} for i in range(n)])


def test_migration_0004_upgrades_and_downgrades(database_url):
    from alembic import command

    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"label_suspects", "city_categories"} <= tables
        command.downgrade(_alembic(database_url), "0003")
        engine.dispose()
        assert not {"label_suspects", "city_categories"} & set(inspect(engine).get_table_names())
        assert "hotspot_groups" in inspect(engine).get_table_names()  # 0003 stays
        command.upgrade(_alembic(database_url), "head")
        engine.dispose()
        cols = {c["name"] for c in inspect(engine).get_columns("label_suspects")}
        assert cols == {"id", "run_id", "appeal_id", "source", "source_row", "field", "given", "suggested", "score",
                        "model_version", "found_at"}
    finally:
        engine.dispose()


def test_a_suspect_names_an_appeal_or_a_file_row(engine):
    with Session(engine) as s:
        s.add(LabelSuspect(run_id="r", field="category", given="a", suggested="b", score=0.1))
        with pytest.raises(IntegrityError):
            s.commit()


def test_suspects_of_a_deleted_appeal_go_with_it(engine):
    _stored(engine, 2)
    with Session(engine) as s:
        store.replace_label_suspects(s, pd.DataFrame({"source": ["appeal:A-0", "appeal:A-1"], "given": ["x", "y"],
                                                      "suggested": ["y", "x"], "score": [0.1, 0.2]}))
        s.delete(s.scalar(select(Appeal).where(Appeal.id == "A-0")))
        s.commit()
        assert s.scalars(select(LabelSuspect.appeal_id)).all() == ["A-1"]


def test_replacing_suspects_keeps_only_the_last_run(engine):
    _stored(engine, 1)
    frame = pd.DataFrame({"source": ["appeal:A-0", "train.csv:4", "file:9", "appeal:nope"], "given": ["x"] * 4,
                          "suggested": ["y"] * 4, "score": [0.3, 0.1, 0.2, 0.0]})
    with Session(engine) as s:
        first = store.replace_label_suspects(s, frame.iloc[:1])
        run = store.replace_label_suspects(s, frame)
        assert run != first
        rows, more = store.list_label_suspects(s)
        assert not more
        assert [(x.source, x.source_row, x.appeal_id, x.run_id) for x, _, _ in rows] == [
            ("train.csv:4", 4, None, run), ("file:9", 9, None, run), (None, None, "A-0", run)]
        assert rows[2][2] == "第0件诉求"
        store.replace_label_suspects(s, frame.iloc[:0])
        assert store.list_label_suspects(s) == ([], False)


def test_added_categories_in_the_order_added_and_audited(engine):
    with Session(engine) as s:
        store.add_category(s, name="数字城管", department="市数字化城市管理中心", added_by="alice")
        store.add_category(s, name="城市更新", department="市城市更新局", added_by="bob")
        with pytest.raises(store.ConflictError, match="^category '数字城管' already exists$"):
            store.add_category(s, name="数字城管", department="别处", added_by="carol")
        assert store.added_categories(s) == {"数字城管": "市数字化城市管理中心", "城市更新": "市城市更新局"}
        assert s.get(CityCategory, "数字城管").added_by == "alice"
        audit = s.execute(select(AuditLog.actor, AuditLog.action, AuditLog.target)).all()
        assert [tuple(a) for a in audit] == [("alice", "category.add", "数字城管"), ("bob", "category.add", "城市更新")]


def test_candidates_are_the_least_confident_flagged_and_the_newest_unlabelled(engine):
    # A-25 is the least confident but not flagged for review: only the newest slice could bring it
    _stored(engine, 30, confidence=lambda i: 0.1 if i == 25 else 0.5 + i / 100, flagged=lambda i: i < 20)
    with Session(engine) as s:
        store.add_labels(s, appeal_id="A-0", changes={"category": "环境保护"}, reason=None, author="a")
        store.add_labels(s, appeal_id="A-1", changes={"urgency": "routine"}, reason=None, author="a")
        rows = store.review_candidates(s, uncertain=3, newest=2)
    # A-0 is labelled; A-1 has an urgency label only; are the newest
    assert [r.id for r in rows] == ["A-1", "A-2", "A-3", "A-28", "A-29"]
    assert rows[0].scores == TAG["category_scores"] and rows[0].model_version == "v1"


def test_candidates_use_each_appeals_latest_prediction(engine):
    _stored(engine, 2, flagged=lambda i: True)
    with engine.connect() as c:
        c.execute(insert(ModelVersion.__table__), [{"version": "v2", "path": "y", "manifest": {}}])
        c.commit()
        store.ingest(c, appeals=[{"id": "A-0", "text": "第0件诉求"}],
                     tags=[{**TAG, "model_version": "v2", "category": "环境保护", "confidence": 0.95}])
    with Session(engine) as s:
        rows = store.review_candidates(s, uncertain=1, newest=0)
        # A-0's v1 prediction was the least confident, but v2's is A-0's latest (and not flagged)
        assert [(r.id, r.model_version) for r in rows] == [("A-1", "v1")]
        rows = store.review_candidates(s, uncertain=0, newest=1)
    assert [(r.id, r.model_version) for r in rows] == [("A-1", "v1")]
    with Session(engine) as s:
        rows = store.review_candidates(s, uncertain=0, newest=2)
    assert [(r.id, r.model_version, r.category) for r in rows] == [("A-0", "v2", "环境保护"), ("A-1", "v1", "城乡建设")]
