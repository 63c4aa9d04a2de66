"""Hostile and broken input: each case was reproduced against a live server in issue 13.

Every answer is a clear 4xx that quotes nothing of the input, costs what the input is
worth, and never touches the appeals sent beside it.
"""
import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import sessionmaker

from service.api import create_app
from service.auth import create_key
from service.config import Settings
from service.db import Appeal, make_engine, upgrade
from tests.conftest import api_env

PHONE, ID_NUMBER = "13812345678", "430102199001011234"


@pytest.fixture
def env(database_url, demo_bundle):
    with api_env(database_url, demo_bundle.path, raise_server_exceptions=False) as e:
        yield e


def h(keys, role="admin"):
    return {"X-API-Key": keys[role], "Content-Type": "application/json"}


def test_a_huge_batch_is_refused_before_its_items_are_validated(env):
    client, keys, _ = env
    body = '{"appeals": [' + ",".join(["{}"] * 1_600_000) + "]}"  # 4.8 MB of empty objects
    for path, role in (("/v1/appeals", "ingest"), ("/v1/classify", "analyst")):
        r = client.post(path, content=body, headers=h(keys, role))
        assert r.status_code == 413 and len(r.content) < 200, r.content[:200]
        assert "at most" in r.json()["detail"]
    # a list just over the limit, of real appeals, is refused as a batch over 1,000
    over = {"appeals": [{"id": f"L-{i}", "text": "路灯坏了"} for i in range(1001)]}
    r = client.post("/v1/appeals", json=over, headers=h(keys))
    assert r.status_code == 413 and "1,000" in r.json()["detail"]


def test_stray_keys_cost_one_error_not_one_each(env):
    client, keys, _ = env
    appeal = {"id": "K-1", "text": "路灯坏了", "contact": PHONE, **{f"k{i}": 1 for i in range(499_999)}}  # 6 MB
    r = client.post("/v1/appeals", content=json.dumps(appeal), headers=h(keys))
    assert r.status_code == 413 and len(r.content) < 300  # more keys than a batch can hold: not even parsed
    appeal = {"id": "K-1", "text": "路灯坏了", "contact": PHONE, **{f"k{i}": 1 for i in range(1_999)}}
    r = client.post("/v1/appeals", content=json.dumps(appeal), headers=h(keys))
    assert r.status_code == 422 and len(r.content) < 1000
    (err,) = r.json()["detail"]
    assert err["type"] == "extra_forbidden" and "1,995 more" in err["msg"]
    assert PHONE not in r.text


def test_a_body_is_validated_against_one_shape_only(env):
    client, keys, _ = env
    r = client.post("/v1/appeals", json={"appeals": [{"id": "S-1"}]}, headers=h(keys))
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "batch", "appeals", 0, "text"]]
    r = client.post("/v1/appeals", json={"id": "S-1"}, headers=h(keys))
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "one", "text"]]


@pytest.mark.parametrize("appeal, field", [
    ({"time": "0001-01-01T00:00:00"}, "time"),
    ({"time": "9999-12-31T20:00:00"}, "time"),
    ({"time": "1969-12-31T23:00:00+08:00"}, "time"),
    ({"district": "区" * 65}, "district"),          # the column holds 64
    ({"channel": "c" * 65}, "channel"),
    ({"district": "北山\x00区"}, "district"),       # PostgreSQL refuses NUL
    ({"user": "A0\x00"}, "user"),
    ({"id": "a/b"}, "id"),                           # could never be read back at /v1/appeals/{id}
    ({"text": "楼道\ud800煤气味"}, "text"),          # a lone surrogate
])
def test_bad_fields_are_a_422_naming_the_field(env, appeal, field):
    client, keys, _ = env
    body = {"id": "F-1", "text": f"路灯坏了，电话{PHONE}", **appeal}
    r = client.post("/v1/appeals", content=json.dumps(body, ensure_ascii=True), headers=h(keys))
    assert r.status_code == 422, r.text
    assert [e["loc"][-1] for e in r.json()["detail"]] == [field]
    assert PHONE not in r.text and "\\ud800" not in r.text


@pytest.mark.parametrize("raw", ['{"id": "N-1", "text": NaN}', '{"id": "N-1", "text": Infinity}',
                                 '{"id": "N-1", "text": 1e999999}', '{"id": "\\ud800", "text": "x"}',
                                 '{"id": "N-1", "text": "x", "text": "y"}', '{"id": "N-1", "text": "x"}x'])
def test_what_json_cannot_carry_back_is_a_422_not_a_500(env, raw):
    client, keys, _ = env
    r = client.post("/v1/appeals", content=raw, headers=h(keys))
    assert r.status_code == 422, r.text
    json.loads(r.text)


@pytest.mark.parametrize("params", [{"since": "0001-01-01T00:00:00"}, {"until": "9999-12-31T23:59:59"},
                                    {"cursor": "czk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"},  # "s" + 29 nines
                                    {"district": "北\x00山"}, {"category": "x\x00"}, {"urgency": "\x00"}])
def test_out_of_range_filters_are_a_422(env, params):
    client, keys, _ = env
    r = client.get("/v1/appeals", params=params, headers=h(keys))
    assert r.status_code == 422, r.text


def test_an_id_with_nul_is_simply_not_found(env):
    client, keys, _ = env
    assert client.get("/v1/appeals/a%00b", headers=h(keys)).status_code == 404


def test_bad_appeals_never_fail_their_neighbours(env):
    """100 clients at once, one appeal in ten bad: every good appeal stored, every bad one a 4xx."""
    client, keys, S = env
    bad = [{"time": "0001-01-01T00:00:00"}, {"time": "9999-12-31T20:00:00"}, {"district": "区" * 100},
           {"user": "A\x00"}, {"text": "\ud800"}]

    def post(i):
        appeal = {"id": f"G-{i}", "text": f"第{i}号：小区路灯坏了，晚上很黑", "district": "北山区"}
        if i % 10 == 0:
            appeal |= bad[(i // 10) % len(bad)]
        r = client.post("/v1/appeals", content=json.dumps(appeal, ensure_ascii=True), headers=h(keys, "ingest"))
        return i, r.status_code

    with ThreadPoolExecutor(100) as pool:
        answers = dict(pool.map(post, range(300)))
    assert {i: s for i, s in answers.items() if i % 10 and s != 200} == {}
    assert all(400 <= answers[i] < 500 for i in range(0, 300, 10))
    with S() as s:
        stored = set(s.scalars(select(Appeal.id)))
    assert stored == {f"G-{i}" for i in range(300) if i % 10}


def test_a_failure_while_tagging_one_request_fails_only_that_request(env, monkeypatch):
    """Fault injection in the real tagger: the texts holding "爆雷" raise; the group they
    share with others is tagged again request by request."""
    client, keys, S = env
    tagger = client.app.state.tagger
    real = tagger.tag

    def flaky(texts, **kw):
        if any("爆雷" in t for t in texts):
            raise OverflowError("date value out of range")
        return real(texts, **kw)

    monkeypatch.setattr(tagger, "tag", flaky)

    def post(i):
        text = "理财平台爆雷" if i % 7 == 0 else f"第{i}号：工地夜间施工噪音太大"
        r = client.post("/v1/appeals", json={"id": f"T-{i}", "text": text}, headers=h(keys, "ingest"))
        return i, r

    with ThreadPoolExecutor(40) as pool:
        answers = dict(pool.map(post, range(120)))
    failed = {i for i, r in answers.items() if r.status_code != 200}
    assert failed == set(range(0, 120, 7))
    assert {answers[i].status_code for i in failed} == {500}
    assert all("OverflowError" in answers[i].json()["detail"] for i in failed)
    with S() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 120 - len(failed)


def test_responses_are_not_cached_and_docs_follow_the_setting(env, database_url, demo_bundle):
    client, keys, _ = env
    r = client.post("/v1/classify", json={"text": "停水三天"}, headers=h(keys))
    assert r.headers["cache-control"] == "no-store" and r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/openapi.json").status_code == 200
    with TestClient(create_app(Settings(database_url=database_url, model_dir=demo_bundle.path,
                                        api_docs=False))) as closed:
        assert closed.get("/openapi.json").status_code == 404 and closed.get("/docs").status_code == 404


def test_sqlite_files_are_private(tmp_path, demo_bundle):
    db = tmp_path / "private.db"
    with TestClient(create_app(Settings(database_url=f"sqlite:///{db}", model_dir=demo_bundle.path))) as c:
        c.get("/healthz")
    for f in tmp_path.glob("private.db*"):
        assert stat.S_IMODE(os.stat(f).st_mode) & 0o077 == 0, f


@pytest.mark.skipif(not os.environ.get("SUQIU_TEST_POSTGRES_URL"),
                    reason="SUQIU_TEST_POSTGRES_URL not set (.ci/run starts a PostgreSQL server and sets it)")
def test_postgres_outage_is_a_503_and_the_service_recovers_by_itself(demo_bundle):
    """A real fault: the database stops taking connections and its sessions are killed."""
    from sqlalchemy import create_engine, make_url

    from service.db import create_scratch_database, drop_database

    url = create_scratch_database(os.environ["SUQIU_TEST_POSTGRES_URL"], "t")
    name = make_url(url).database
    admin = create_engine(os.environ["SUQIU_TEST_POSTGRES_URL"], isolation_level="AUTOCOMMIT")
    try:
        upgrade(url)
        with sessionmaker(make_engine(url))() as s:
            key = create_key(s, role="admin", name="outage")
        with TestClient(create_app(Settings(database_url=url, model_dir=demo_bundle.path)),
                        raise_server_exceptions=False) as client:
            hdr = {"X-API-Key": key}
            assert client.post("/v1/appeals", json={"id": "O-1", "text": "停水"}, headers=hdr).status_code == 200
            with admin.connect() as c:
                c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                          {"d": name})
            client.app.state.engine.dispose()  # no pooled connection to fall back on
            r = client.post("/v1/appeals", json={"id": "O-2", "text": "停电"}, headers=hdr)
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
            r = client.get("/v1/appeals", headers=hdr)
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
            with admin.connect() as c:
                c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            assert client.post("/v1/appeals", json={"id": "O-2", "text": "停电"}, headers=hdr).status_code == 200
            assert client.get("/v1/appeals", headers=hdr).json()["count"] == 2
    finally:
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
        drop_database(url)
