"""The digest's cache (service/digest_cache.py): the digest of a run that reused last week's
entry equals the digest of a run without it; an entry whose history changed is not used."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from corpora.records import DEFAULT_MAX_CHARS
from corpora.simulate import CityConfig, simulate_stream
from service import digest_cache
from service.digest import digest_from_db, digest_from_file, read_input
from service.digest_cache import DatabaseHistory, FileHistory

PREV, WEEK = "2024-10-20", "2024-10-27"  # two Sundays
CITY = CityConfig(background="shipped", base_per_day=25)


@pytest.fixture(scope="module")
def stream():
    frame, _ = simulate_stream(start="2024-01-01", end=WEEK, city=CITY, seed=7)
    in_week = (frame["time"] > PREV + "T23:59:59").to_numpy()
    return frame[~in_week].reset_index(drop=True), frame[in_week].reset_index(drop=True)


@pytest.fixture(autouse=True)
def small_sources_are_cached(monkeypatch):
    monkeypatch.setattr(digest_cache, "MIN_ROWS", 1)


def _same(a: dict, b: dict) -> bool:
    return {k: v for k, v in a.items() if k not in ("generated_at", "seconds")} == \
        {k: v for k, v in b.items() if k not in ("generated_at", "seconds")}


def _spy(monkeypatch, cls, method):
    made = []
    orig = getattr(cls, method)

    def wrapped(self, *a, **kw):
        made.append(self)
        return orig(self, *a, **kw)
    monkeypatch.setattr(cls, method, wrapped)
    return made


# a row with an empty text, one with a bad time, one without an id: reported, left out
BAD = "id,time,district,category,text\nbad-1,2024-10-25 10:00:00,东城区,城乡建设,\n" \
      "bad-2,yesterday,东城区,城乡建设,小区暖气不热\n,2024-10-26 09:00:00,东城区,城乡建设,小区路灯坏了一个月没人修\n"


def test_file_appended_rows_give_the_digest_of_the_whole_file(tmp_path, stream, monkeypatch, caplog):
    prev, week = stream
    path, cache = tmp_path / "appeals.csv", tmp_path / "cache"
    prev.to_csv(path, index=False)
    made = _spy(monkeypatch, FileHistory, "read")
    digest_from_file(path, PREV, cache=cache)
    assert made[-1].state == "cold" and any(cache.iterdir())
    with open(path, "a", encoding="utf-8", newline="") as fh:  # the week appended, bad rows among it
        week.iloc[:40].to_csv(fh, header=False, index=False)
        fh.write(BAD.split("\n", 1)[1])
        week.iloc[40:].to_csv(fh, header=False, index=False)

    caplog.set_level(logging.WARNING, logger="service.digest")
    warm = digest_from_file(path, WEEK, cache=cache)
    assert made[-1].state == "appended"
    def digest_warnings():  # only the digest's: a thread of an earlier test may log meanwhile
        return sorted(r.getMessage() for r in caplog.records if r.name.startswith("service.digest"))

    warned = digest_warnings()
    caplog.clear()
    cold = digest_from_file(path, WEEK, cache=False)
    assert _same(warm, cold)
    assert warned == digest_warnings() and len(warned) == 2  # same rows, same numbers

    history = FileHistory(path, DEFAULT_MAX_CHARS, cache_dir=cache)
    frame, memo = history.read()
    assert history.state == "same" and memo.normalised
    pd.testing.assert_frame_equal(frame, read_input(path))
    assert frame["id"].str.startswith("row-").sum() == 1


def test_file_a_changed_history_row_is_read_again(tmp_path, stream, monkeypatch):
    prev, week = stream
    path, cache = tmp_path / "appeals.csv", tmp_path / "cache"
    pd.concat([prev, week]).to_csv(path, index=False)
    digest_from_file(path, WEEK, cache=cache)
    changed = pd.concat([prev, week]).reset_index(drop=True)
    k = changed.index[changed["district"].notna()][5]
    changed.loc[k, "district"] = "新设区"  # one history row, same file size or not
    changed.to_csv(path, index=False)
    made = _spy(monkeypatch, FileHistory, "read")
    warm = digest_from_file(path, WEEK, cache=cache)
    assert made[-1].state == "cold"
    assert _same(warm, digest_from_file(path, WEEK, cache=False))
    frame, _ = FileHistory(path, DEFAULT_MAX_CHARS, cache_dir=cache).read()
    assert (frame["district"] == "新设区").sum() == 1


def test_file_not_cached_below_min_rows_or_when_off(tmp_path, stream, monkeypatch):
    prev, _ = stream
    path = tmp_path / "appeals.csv"
    prev.to_csv(path, index=False)
    monkeypatch.setattr(digest_cache, "MIN_ROWS", len(prev) + 1)
    digest_from_file(path, PREV, cache=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    history = FileHistory(path, DEFAULT_MAX_CHARS, cache_dir=None)
    history.read()
    assert history.state == "off"


def test_database_keeps_what_never_changes_and_reads_the_tags(database_url, tmp_path, stream, monkeypatch):
    from sqlalchemy.orm import Session

    from service import store
    from service.db import make_engine, upgrade
    from training.bench_digest import _ingest

    prev, week = stream
    cache = tmp_path / "cache"
    upgrade(database_url)
    _ingest(database_url, prev, register=True)
    made = _spy(monkeypatch, DatabaseHistory, "rows")
    digest_from_db(database_url, PREV, cache=cache)  # no entry yet: every appeal read whole, then kept
    assert not made and any(cache.iterdir())
    _ingest(database_url, week)
    warm = digest_from_db(database_url, WEEK, cache=cache)
    assert made and made[-1].state == "warm" and made[-1].missing == len(week)
    assert _same(warm, digest_from_db(database_url, WEEK, cache=False))

    # a label changes an appeal's category: the digest with the entry sees it
    engine = make_engine(database_url)
    target = week["id"].iloc[0]
    new = "环境保护" if week["category"].iloc[0] != "环境保护" else "城乡建设"
    with Session(engine) as s:
        store.add_labels(s, appeal_id=target, changes={"category": new}, reason=None, author="test")
    engine.dispose()
    labelled = digest_from_db(database_url, WEEK, cache=cache)
    assert made[-1].missing == 0
    assert _same(labelled, digest_from_db(database_url, WEEK, cache=False))
    assert not _same(labelled, warm)


def test_an_entry_of_another_pipeline_is_not_used(tmp_path, stream, monkeypatch):
    prev, _ = stream
    path, cache = tmp_path / "appeals.csv", tmp_path / "cache"
    prev.to_csv(path, index=False)
    digest_from_file(path, PREV, cache=cache)
    monkeypatch.setattr(digest_cache, "pipeline_key", lambda: "another")
    history = FileHistory(path, DEFAULT_MAX_CHARS, cache_dir=cache)
    history.read()
    assert history.state == "cold"


def test_entries_are_private(tmp_path, stream):
    prev, _ = stream
    path, cache = tmp_path / "appeals.csv", tmp_path / "cache"
    prev.to_csv(path, index=False)
    digest_from_file(path, PREV, cache=cache)
    (entry,) = cache.iterdir()
    assert entry.stat().st_mode & 0o077 == 0
    assert all(f.stat().st_mode & 0o077 == 0 for f in entry.iterdir())


def test_database_entry_gives_back_what_it_kept_and_only_for_the_same_appeal(tmp_path):
    history = DatabaseHistory("sqlite:///" + str(tmp_path / "x.db"), cache_dir=tmp_path / "cache", min_rows=1)
    seq, ids = np.array([7, 3, 5]), np.array(["c", "a", "b"], dtype=object)
    ns = pd.to_datetime(["2025-01-03T08:00:00Z", "2025-01-01T00:30:00Z", "2025-01-02T23:59:59Z"]).asi8
    kept = {"time": ns, "district": np.array(["A1区", None, "A1区"], dtype=object),
            "user": np.array([None, "u1", "u2"], dtype=object), "text": np.array(["甲", "乙", "甲"], dtype=object)}
    history.save(seq, ids, kept, memo=None, changed=True)
    again = DatabaseHistory(history.url, cache_dir=tmp_path / "cache")
    assert again.state == "warm"
    # asked in another order, with one appeal stored again under a new id and one never seen
    got, hit = again.rows(np.array([5, 3, 7, 9]), np.array(["b", "a", "other", "d"], dtype=object))
    assert hit.tolist() == [True, True, False, False]
    assert got["time"][:2].tolist() == [ns[2], ns[1]]
    assert got["district"].tolist() == ["A1区", None, None, None] and got["user"][:2].tolist() == ["u2", "u1"]
    assert got["text"].tolist() == ["甲", "乙", None, None]


def test_database_week_grouped_apart_before_the_history_gives_the_same_hotspots(database_url, stream, monkeypatch):
    """A big week's hotspots are grouped in a second process started before the history is
    read (service.digest._group_stored_week): the digest equals the one grouped in process."""
    from service import digest as digest_module
    from service.db import upgrade
    from training.bench_digest import _ingest

    prev, week = stream
    upgrade(database_url)
    _ingest(database_url, pd.concat([prev, week]), register=True)
    started = _spy(monkeypatch, digest_module._Grouping, "help")
    monkeypatch.setattr(digest_module, "GROUP_APART", 10 ** 9)
    alone = digest_from_db(database_url, WEEK, cache=False)
    assert not started
    monkeypatch.setattr(digest_module, "GROUP_APART", 50)
    apart = digest_from_db(database_url, WEEK, cache=False)
    assert started and alone["hotspots"]["groups"] and _same(apart, alone)


def _stored(url, rows):
    """The migrated database ``url`` holding ``rows`` (id, time, title, text, district, user)."""
    from datetime import datetime, timezone

    from sqlalchemy.orm import Session

    from service import store
    from service.db import make_engine, upgrade

    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s:
        store.register_model(s, version="v", path="-", manifest={})
        appeals = [{"id": i, "time": datetime(2024, 10, 21, 8, k % 60, tzinfo=timezone.utc), "title": title,
                    "text": text, "district": district, "user": user, "channel": None}
                   for k, (i, title, text, district, user) in enumerate(rows)]
        tags = [{"model_version": "v", "category": "城乡建设", "confidence": 0.9, "category_scores": {"城乡建设": 0.9},
                 "needs_review": k % 2 == 0, "urgency": None if k % 3 else "urgent"} for k in range(len(rows))]
        store.ingest(s, appeals=appeals, tags=tags)
    return engine


def _as_read(value):
    """A value as both readers agree on it: times (aware datetimes from psycopg, UTC
    datetime64 from ADBC on PostgreSQL) as UTC timestamps."""
    from datetime import datetime

    if isinstance(value, (datetime, np.datetime64)):
        return pd.Timestamp(value).tz_localize(None) if pd.Timestamp(value).tz is None else \
            pd.Timestamp(value).tz_convert("UTC").tz_localize(None)
    return value


def test_the_history_read_through_adbc_is_what_the_driver_reads(database_url, monkeypatch, caplog):
    from sqlalchemy import select

    from service import digest
    from service.db import Appeal

    # senders and titles NULL for the first rows, then text: ADBC must not read them as numbers
    rows = [(f"a{k}", None if k < 6 else f"标题{k}", ["路灯坏了", "暖气不热", "小区停水"][k % 3],
             None if k % 4 == 0 else "东城区", None if k < 6 else f"u{k % 2}") for k in range(10)]
    engine = _stored(database_url, rows)
    stmt = select(*(getattr(Appeal, c) for c in digest._TAGS + digest._UNCHANGING)).order_by(Appeal.seq)
    with engine.connect() as conn:
        expected = [tuple(map(_as_read, r)) for r in digest._fetch(conn, stmt)]
        by_arrow = digest._fetch_arrow(conn, stmt)
        assert by_arrow is not None  # read through ADBC, not the fallback
        assert [tuple(_as_read(c[k]) for c in by_arrow) for k in range(len(rows))] == expected
        # one text, many rows: one Python string
        texts = by_arrow[len(digest._TAGS) + digest._UNCHANGING.index("text")]
        assert texts[0] is texts[3]
        if conn.dialect.name == "sqlite":
            # a batch too small to see the senders' type: ADBC fails, the sqlite3 module reads it
            monkeypatch.setattr(digest, "_ADBC_BATCH_ROWS", 2)
        else:  # a server ADBC cannot reach: psycopg reads it, on the engine's own connection
            def unreachable(conn, stmt):
                raise OSError("connection refused")
            monkeypatch.setattr(digest, "_adbc_postgres", unreachable)
        assert digest._fetch_arrow(conn, stmt) is None
        with caplog.at_level(logging.INFO, logger="service.digest"):
            columns = digest._fetch_columns(conn, stmt)
        assert f"reading it with {conn.dialect.driver}" in caplog.text
        assert [tuple(_as_read(c[k]) for c in columns) for k in range(len(rows))] == expected
    engine.dispose()


def test_the_digest_of_a_stored_history_is_the_same_read_either_way(database_url, stream, monkeypatch):
    from service import digest
    from service.db import upgrade
    from training.bench_digest import _ingest

    prev, week = stream
    upgrade(database_url)
    _ingest(database_url, pd.concat([prev, week], ignore_index=True), register=True)
    read = []
    def through_adbc(conn, stmt, sort_by=None, f=digest._fetch_arrow):
        got = f(conn, stmt, sort_by)
        read.append(got is not None)
        return got

    monkeypatch.setattr(digest, "_fetch_arrow", through_adbc)
    by_arrow = digest_from_db(database_url, WEEK, cache=False)
    assert read and all(read)  # ADBC read the history
    monkeypatch.setattr(digest, "_fetch_arrow", lambda *args: None)
    assert _same(by_arrow, digest_from_db(database_url, WEEK, cache=False))


@pytest.mark.parametrize("reader", ["adbc", "driver"])
def test_a_history_stored_out_of_arrival_order_gives_the_same_digest(database_url, stream, tmp_path, reader,
                                                                     monkeypatch):
    """Rows in the database's own order are put in arrival order: appeals with the same time
    (to the second) are listed alike on SQLite and on PostgreSQL, where an UPDATE moves a row;
    read through ADBC or through the database's own driver (psycopg, sqlite3)."""
    from sqlalchemy import text

    from service.db import make_engine, upgrade
    from training.bench_digest import _ingest

    prev, week = stream
    frame = pd.concat([prev, week], ignore_index=True)
    frame["time"] = pd.to_datetime(frame["time"]).dt.floor("min")  # to the minute: many ties
    assert frame["time"].duplicated().sum() > 100
    for url in (database_url, f"sqlite:///{tmp_path / 'reference.db'}"):
        upgrade(url)
        _ingest(url, frame, register=True)
    engine = make_engine(database_url)
    with engine.begin() as conn:  # a new version of every third row, elsewhere in the table on PostgreSQL
        conn.execute(text("UPDATE appeals SET district = district WHERE seq % 3 = 0"))
        if conn.dialect.name == "postgresql":  # the table's own order (an index-only scan of seq is sorted)
            for scan in ("indexonlyscan", "indexscan", "bitmapscan"):
                conn.execute(text(f"SET LOCAL enable_{scan} = off"))
            order = conn.execute(text("SELECT seq FROM appeals")).scalars().all()
            assert order != sorted(order)  # the scan no longer gives arrival order
    engine.dispose()
    if reader == "driver":
        monkeypatch.setattr("service.digest._fetch_arrow", lambda *a, **k: None)
    moved = digest_from_db(database_url, WEEK, cache=False)
    reference = digest_from_db(f"sqlite:///{tmp_path / 'reference.db'}", WEEK, cache=False)
    assert moved["headline"]["received"]["ids"] == reference["headline"]["received"]["ids"]
    assert _same(moved, reference)
