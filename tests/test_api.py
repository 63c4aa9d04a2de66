"""The HTTP API against a real database (SQLite; PostgreSQL too when CI provides one)."""
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from service.api import create_app
from service.auth import create_key
from service.config import Settings
from service.db import Appeal, AuditLog, Prediction, make_engine, upgrade
from tests.conftest import api_env


@pytest.fixture
def env(database_url, demo_bundle):
    with api_env(database_url, demo_bundle.path, max_text_chars=5000, max_body_bytes=2_000_000) as e:
        yield e


def h(keys, role="admin"):
    return {"X-API-Key": keys[role]}


APPEAL = {"id": "A-1", "time": "2025-12-18T07:40:00", "title": "暖气不热",
          "text": "北山区梧桐郡5栋暖气从前天开始就不热了，屋里只有十二度，家里有婴儿", "district": "北山区"}


def test_ingest_is_idempotent_and_returns_tags(env):
    client, keys, S = env
    r = client.post("/v1/appeals", json=APPEAL, headers=h(keys, "ingest"))
    assert r.status_code == 200, r.text
    tag = r.json()["data"][0]
    assert tag["id"] == "A-1" and tag["created"] is True
    assert tag["category"] == "城乡建设" and tag["topic"] == "冬季采暖"
    assert tag["deadlines"]["contact_by"] == "2025-12-18T08:40:00+08:00"  # the hotline's clock
    r2 = client.post("/v1/appeals", json=APPEAL, headers=h(keys, "ingest"))
    assert r2.json()["data"][0]["created"] is False
    with S() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 1
        assert s.scalar(select(func.count()).select_from(Prediction)) == 1


def test_same_id_with_other_text_conflicts(env):
    client, keys, _ = env
    client.post("/v1/appeals", json=APPEAL, headers=h(keys))
    r = client.post("/v1/appeals", json={**APPEAL, "text": "别的内容"}, headers=h(keys))
    assert r.status_code == 409
    assert r.json()["detail"].startswith("appeal 'A-1' already exists with different text")


def test_batch_filters_pagination_and_detail(env):
    client, keys, _ = env
    batch = [{"id": f"B-{i}", "time": f"2025-10-0{1 + i % 5}T10:00:00", "district": "南湖区" if i % 2 else "东城区",
              "text": "国庆去景区，导游强制购物，门票也贵" if i % 2 else "工地夜间施工噪音太大，居民无法休息"}
             for i in range(25)]
    r = client.post("/v1/appeals", json={"appeals": batch}, headers=h(keys))
    assert r.status_code == 200 and r.json()["count"] == 25
    seen, cursor = [], None
    while True:
        params = {"limit": 10, "district": "南湖区"} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/appeals", params=params, headers=h(keys, "analyst")).json()
        seen += [a["id"] for a in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"B-{i}" for i in range(1, 25, 2)]
    page = client.get("/v1/appeals", params={"category": "商贸旅游", "since": "2025-10-02T00:00:00",
                                             "until": "2025-10-03T00:00:00"}, headers=h(keys)).json()
    assert {a["id"] for a in page["data"]} == {f"B-{i}" for i in range(25) if i % 5 == 1 and i % 2}
    d = client.get("/v1/appeals/B-1", headers=h(keys)).json()
    assert d["appeal"]["district"] == "南湖区" and len(d["predictions"]) == 1 and d["labels"] == []


def test_times_are_one_instant_whatever_their_offset(env):
    """A naive time is on the hotline's clock (SUQIU_TIMEZONE, default Asia/Shanghai); with an
    offset it is converted. Both databases store and return the same instant."""
    client, keys, _ = env
    forms = {"T-local": "2025-01-06T09:00:00", "T-cst": "2025-01-06T09:00:00+08:00", "T-utc": "2025-01-06T01:00:00Z"}
    r = client.post("/v1/appeals", json={"appeals": [{"id": i, "text": "楼道里有很浓的煤气味", "time": t}
                                                     for i, t in forms.items()]}, headers=h(keys))
    assert r.status_code == 200, r.text
    assert len({json.dumps(t["deadlines"]) for t in r.json()["data"]}) == 1  # the same deadlines, local time
    assert r.json()["data"][0]["deadlines"]["contact_by"].endswith("+08:00")
    stored = {i: client.get(f"/v1/appeals/{i}", headers=h(keys)).json()["appeal"]["time"] for i in forms}
    assert set(stored.values()) == {"2025-01-06T01:00:00Z"}
    def page(**q):
        return {a["id"] for a in client.get("/v1/appeals", params=q, headers=h(keys)).json()["data"]}

    assert page(since="2025-01-06T09:00:00") == set(forms)  # naive: Beijing time
    assert page(since="2025-01-06T09:00:01") == set()
    assert page(until="2025-01-06T01:00:01Z") == set(forms)


def test_label_correction_history_and_audit(env):
    client, keys, S = env
    client.post("/v1/appeals", json=APPEAL, headers=h(keys))
    r = client.post("/v1/appeals/A-1/labels", json={"urgency": "critical", "reason": "婴儿受冻"},
                    headers=h(keys, "analyst"))
    assert r.status_code == 200, r.text
    assert r.json()[0]["new_value"] == "critical" and r.json()[0]["author"] == "test-analyst"
    d = client.get("/v1/appeals/A-1", headers=h(keys)).json()
    assert d["appeal"]["urgency"] == "critical" and d["appeal"]["needs_review"] is False
    assert [lab["field"] for lab in d["labels"]] == ["urgency"]
    with S() as s:
        assert s.scalar(select(AuditLog.action).where(AuditLog.target == "A-1")) == "label.urgency"
    bad = client.post("/v1/appeals/A-1/labels", json={"category": "星际事务"}, headers=h(keys))
    assert bad.status_code == 422 and "unknown category" in bad.json()["detail"]
    assert client.post("/v1/appeals/A-1/labels", json={}, headers=h(keys)).status_code == 422
    assert client.post("/v1/appeals/nope/labels", json={"urgency": "urgent"}, headers=h(keys)).status_code == 404


@pytest.mark.parametrize("method, path, role, status", [
    ("get", "/v1/appeals", None, 401),
    ("get", "/v1/appeals", "wrong", 401),
    ("get", "/v1/appeals", "ingest", 403),
    ("post", "/v1/appeals/A-1/labels", "ingest", 403),
    ("get", "/metrics", "ingest", 403),
    ("get", "/v1/appeals", "analyst", 200),
])
def test_keys_and_roles(env, method, path, role, status):
    client, keys, _ = env
    headers = {} if role is None else {"X-API-Key": keys.get(role, "sq_wrong")}
    kw = {"json": {"urgency": "urgent"}} if method == "post" else {}
    assert getattr(client, method)(path, headers=headers, **kw).status_code == status


def test_bad_payloads(env):
    client, keys, _ = env
    r = client.post("/v1/appeals", json={"id": "x"}, headers=h(keys))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "text"
    r = client.post("/v1/appeals", json={**APPEAL, "text": "长" * 5001}, headers=h(keys))
    assert r.status_code == 422 and "the maximum is 5,000" in r.json()["detail"]
    r = client.post("/v1/appeals", json={"appeals": [{**APPEAL, "id": str(i)} for i in range(1001)]},
                    headers=h(keys))
    assert r.status_code == 413
    r = client.post("/v1/appeals", content=b"{" + b" " * 2_000_001 + b"}", headers=h(keys))
    assert r.status_code == 413

    def streamed():  # no Content-Length: the limit must hold on the bytes read
        yield b"{"
        for _ in range(25):
            yield b" " * 100_000
        yield b"}"

    r = client.post("/v1/appeals", content=streamed(), headers={**h(keys), "Content-Type": "application/json"})
    assert r.status_code == 413
    assert client.get("/v1/appeals/none", headers=h(keys)).json() == {"detail": "Appeal not found"}
    assert client.get("/v1/appeals", params={"cursor": "@@"}, headers=h(keys)).status_code == 422


def test_any_unicode_is_accepted_and_control_chars_stripped(env):
    client, keys, _ = env
    text = "樓道裡有煤氣味😡\x00\x07 mixed English 和 русский"
    r = client.post("/v1/appeals", json={"id": "U-1", "text": text}, headers=h(keys))
    assert r.status_code == 200
    stored = client.get("/v1/appeals/U-1", headers=h(keys)).json()["appeal"]["text"]
    assert stored == "樓道裡有煤氣味😡 mixed English 和 русский"
    r = client.post("/v1/classify", json={"text": "\x00\x01"}, headers=h(keys))
    assert r.status_code == 422


def test_classify_does_not_store_and_ops_endpoints(env):
    client, keys, S = env
    r = client.post("/v1/classify", json={"appeals": [{"text": "导游强制购物"}, {"text": "停水三天"}]},
                    headers=h(keys, "ingest"))
    assert r.status_code == 200 and r.json()["count"] == 2
    with S() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 0
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["model_loaded"] and ready["database"]
    m = client.get("/metrics", headers=h(keys, "analyst")).text
    assert 'suqiu_predictions_total{category="商贸旅游"' in m
    assert "suqiu_request_seconds_bucket" in m and "suqiu_review_share" in m


def test_revoked_key_stops_working(tmp_path, demo_bundle):
    from service.auth import revoke_key

    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    S = sessionmaker(make_engine(url))
    with S() as s:
        raw = create_key(s, role="analyst", name="temp")
    app = create_app(Settings(database_url=url, model_dir=demo_bundle.path, key_cache_seconds=0))
    with TestClient(app) as client:
        assert client.get("/v1/appeals", headers={"X-API-Key": raw}).status_code == 200
        with S() as s:
            revoke_key(s, name="temp")
        assert client.get("/v1/appeals", headers={"X-API-Key": raw}).json() == {
            "detail": "invalid or revoked API key"}


def test_keys_cli_prints_the_key_once(tmp_path, monkeypatch, capsys):
    from service.auth import hash_key
    from service.cli import main
    from service.db import ApiKey

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SUQIU_DATABASE_URL", url)
    assert main(["keys", "create", "--role", "ingest", "--name", "hotline"]) == 0
    raw = capsys.readouterr().out.strip()
    with sessionmaker(make_engine(url))() as s:
        key = s.scalar(select(ApiKey).where(ApiKey.name == "hotline"))
        assert key.key_hash == hash_key(raw) != raw  # only the hash is stored
        assert key.prefix == raw[:8]
    assert main(["keys", "create", "--role", "ingest", "--name", "hotline"]) == 3
    assert main(["keys", "revoke", "--name", "hotline"]) == 0


def test_grouped_requests_get_the_answers_they_would_get_alone(env):
    """Group commit (service/batcher.py): one group holding new appeals, a re-sent id, a
    conflicting id and an over-long text answers each request as if it came alone."""
    client, keys, S = env
    client.post("/v1/appeals", json=APPEAL, headers=h(keys))
    group = [[{**APPEAL, "id": "G-1", "title": None}],
             [{**APPEAL, "id": "G-2", "title": None}, {**APPEAL, "id": "G-3", "title": None}],
             [{**APPEAL, "id": "G-1", "title": None}],             # the same id again in the group
             [{**APPEAL, "text": "别的内容"}],                        # A-1 with other text
             [{**APPEAL, "id": "G-4", "text": "长" * 6000}]]         # over max_text_chars
    for records in group:
        for r in records:
            r["time"] = None
    outcomes = client.app.state.ingest.process(group)
    assert [o.created for o in outcomes[:3]] == [[True], [True, True], [False]]
    assert outcomes[3].error.status_code == 409 and outcomes[4].error.status_code == 422
    assert all(o.tags and o.tags[0]["category"] for o in outcomes[:3])
    ok = client.app.state.ingest.process([[{**APPEAL, "id": f"H-{i}", "time": None}] for i in range(3)])
    assert [o.created for o in ok] == [[True]] * 3
    with S() as s:
        ids = set(s.scalars(select(Appeal.id)))
        assert ids == {"A-1", "G-1", "G-2", "G-3", "H-0", "H-1", "H-2"}
        assert s.scalar(select(func.count()).select_from(Prediction)) == len(ids)


def test_concurrent_requests_are_each_answered_after_commit(env):
    from concurrent.futures import ThreadPoolExecutor

    client, keys, S = env

    def post(i):
        return client.post("/v1/appeals", json={**APPEAL, "id": f"C-{i % 10}"}, headers=h(keys))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(30)))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200]
    created = [r.json()["data"][0]["created"] for r in answers]
    assert sum(created) == 10  # each of the 10 ids created exactly once, re-sends acknowledged
    with S() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 10
