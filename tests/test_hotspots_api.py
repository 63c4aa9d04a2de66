"""Hotspots in the service (service/hotspot_store.py, ADR 0006): grouping stored appeals
under a lease, the stored groups, ``GET /v1/hotspots`` and the appeal's ``hotspot``; against
the real app on SQLite (and PostgreSQL when SUQIU_TEST_POSTGRES_URL is set). Texts are
written for these tests."""
from __future__ import annotations

import json
import threading
import time

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from models.hotspots import HotspotGrouper
from service.config import Settings
from service.db import WriteLock, make_engine
from service.hotspot_store import HotspotAssignment, HotspotGroup, HotspotRefresher, HotspotState
from tests.conftest import api_env

PHONE = "13812345678"
WATER = [  # two re-posts about one 小区's water cut (one with a phone number) and a third later
    {"id": "W-1", "time": "2025-06-01T08:00:00", "district": "东城区", "user": "u1",
     "text": f"幸福里小区从昨天开始停水，到现在已经两天了，水压一直很低，家里老人孩子生活很不方便，请尽快处理。联系电话{PHONE}"},
    {"id": "W-2", "time": "2025-06-02T09:30:00", "district": "东城区", "user": "u2",
     "text": "幸福里小区停水两天了，水压很低，老人孩子生活不方便，希望尽快恢复供水"},
]
W3 = {"id": "W-3", "time": "2025-06-03T09:30:00", "district": "东城区", "user": "u6",
      "text": "幸福里小区还在停水，我已经多次反映，至今未解决，水压低，请尽快恢复供水"}
LAMP = {"id": "X-1", "time": "2025-06-01T10:00:00", "district": "东城区", "user": "u3",
        "text": "东城区人民路的路灯坏了一个多月，晚上走路很黑，请派人维修"}
TOURS = [
    {"id": "T-1", "time": "2025-08-10T10:00:00", "district": "南湖区", "user": "u4",
     "text": "南湖景区导游强制游客购物，不买就不让上车，旅行社态度恶劣，要求退款"},
    {"id": "T-2", "time": "2025-08-11T10:00:00", "district": "南湖区", "user": "u5",
     "text": "南湖景区导游强制游客购物，不买东西就不让上车，旅行社态度很恶劣，要求退款"},
]
QUIET = {"hotspots_interval_s": 3600, "hotspots_lease_s": 7300}  # the test drives the refreshes


def h(keys, role="admin"):
    return {"X-API-Key": keys[role]}


def post(client, keys, appeals):
    r = client.post("/v1/appeals", json={"appeals": appeals}, headers=h(keys))
    assert r.status_code == 200, r.text


def refresh(client) -> int:
    return client.app.state.hotspots.tick()


@pytest.fixture
def env(database_url, demo_bundle):
    with api_env(database_url, demo_bundle.path, **QUIET) as e:
        yield e


def detail(client, keys, appeal_id):
    r = client.get(f"/v1/appeals/{appeal_id}", headers=h(keys, "analyst"))
    assert r.status_code == 200, r.text
    return r.json()["hotspot"]


def listing(client, keys, **params):
    r = client.get("/v1/hotspots", params=params, headers=h(keys, "analyst"))
    assert r.status_code == 200, r.text
    return r.json()


def test_reposts_share_a_group_listed_and_shown_on_the_appeal(env):
    client, keys, _ = env
    post(client, keys, [*WATER, LAMP])
    assert detail(client, keys, "W-1") is None  # not grouped yet
    assert refresh(client) == 3
    w1, w2, lamp = (detail(client, keys, i) for i in ("W-1", "W-2", "X-1"))
    assert w1["group_id"] == w2["group_id"] != lamp["group_id"]
    assert w1["size"] == 2 and w1["place"] == "幸福里小区" and lamp["size"] == 1
    assert w1["summary"].startswith("幸福里小区：") and "停水" in w1["summary"]
    page = listing(client, keys)
    assert [g["group_id"] for g in page["data"]] == [w1["group_id"]]  # the lone appeal is no hotspot
    g = page["data"][0]
    assert (g["size"], g["people"], g["districts"]) == (2, 2, ["东城区"])
    assert g["first_time"] == "2025-06-01T00:00:00Z" and g["last_time"] == "2025-06-02T01:30:00Z"  # UTC
    one = client.get(f"/v1/hotspots/{w1['group_id']}", headers=h(keys, "analyst")).json()
    assert one["appeal_ids"] == ["W-1", "W-2"] and one["repeats"] == []
    assert PHONE not in json.dumps(page, ensure_ascii=False) + json.dumps(one, ensure_ascii=False)
    # a later appeal saying it wrote before joins the group, marked as a repeat of the earlier ones
    post(client, keys, [W3])
    assert refresh(client) == 1
    w3 = detail(client, keys, "W-3")
    assert w3["group_id"] == w1["group_id"] and w3["size"] == 3
    assert w3["repeat"] is True and w3["repeat_of"] == ["W-1", "W-2"]
    assert detail(client, keys, "W-1")["size"] == 3
    assert refresh(client) == 0  # nothing new: nothing assigned twice


def test_filters_by_district_and_period_and_pages(env):
    client, keys, _ = env
    post(client, keys, [*WATER, LAMP, *TOURS])
    refresh(client)
    water, tours = detail(client, keys, "W-1")["group_id"], detail(client, keys, "T-1")["group_id"]
    assert water != tours == detail(client, keys, "T-2")["group_id"]

    def ids(**params):
        return [g["group_id"] for g in listing(client, keys, **params)["data"]]

    assert set(ids()) == {water, tours}
    assert ids(district="东城区") == [water] and ids(district="南湖区") == [tours] and ids(district="西山区") == []
    assert ids(since="2025-07-01T00:00:00") == [tours] and ids(until="2025-07-01T00:00:00") == [water]
    assert ids(since="2025-06-02T09:30:00", until="2025-06-02T09:30:01") == [water]  # local time, like /v1/appeals
    assert ids(since="2025-06-02T09:30:01", until="2025-08-10T10:00:00") == []
    first = listing(client, keys, limit=1)
    second = listing(client, keys, limit=1, cursor=first["next_cursor"])
    assert first["count"] == 1 and second["next_cursor"] is None
    assert [first["data"][0]["group_id"], second["data"][0]["group_id"]] == ids()
    assert first["data"][0]["heat"] >= second["data"][0]["heat"]  # hottest first


@pytest.mark.parametrize("params, field", [
    ({"since": "1900-01-01T00:00:00"}, "since"),
    ({"until": "2100-01-02T00:00:00"}, "until"),
    ({"since": "yesterday"}, "since"),
    ({"limit": 0}, "limit"),
    ({"limit": 100_000}, "limit"),
    ({"district": "东城区\x00"}, "district"),
    ({"district": "区" * 129}, "district"),
])
def test_bad_queries_are_refused_with_a_422_naming_the_field(env, params, field):
    client, keys, _ = env
    r = client.get("/v1/hotspots", params=params, headers=h(keys, "analyst"))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", field]


def test_bad_cursor_period_keys_and_unknown_groups(env):
    client, keys, _ = env
    r = client.get("/v1/hotspots", params={"cursor": "@@"}, headers=h(keys))
    assert r.status_code == 422 and r.json()["detail"] == "cursor is not one this service returned"
    r = client.get("/v1/hotspots", params={"since": "2025-06-02T00:00:00", "until": "2025-06-01T00:00:00"},
                   headers=h(keys))
    assert r.status_code == 422 and r.json()["detail"] == "since must be before until"
    assert client.get("/v1/hotspots").status_code == 401
    assert client.get("/v1/hotspots/g000001").status_code == 401
    assert client.get("/v1/hotspots", headers={"X-API-Key": "sq_wrong"}).status_code == 401
    assert client.get("/v1/hotspots", headers=h(keys, "ingest")).status_code == 403
    for gid in ("g000001", "nope", "g1'; --"):
        r = client.get(f"/v1/hotspots/{gid}", headers=h(keys))
        assert r.status_code == 404 and r.json() == {"detail": "Hotspot not found"}


def test_the_background_refresh_groups_new_appeals_within_seconds(database_url, demo_bundle):
    with api_env(database_url, demo_bundle.path, hotspots_interval_s=0.2, hotspots_lease_s=5) as (client, keys, _):
        post(client, keys, WATER)
        t0 = time.monotonic()
        while detail(client, keys, "W-2") is None:
            assert time.monotonic() - t0 < 15, "not grouped within 15 s"
            time.sleep(0.05)
        assert detail(client, keys, "W-2")["group_id"] == detail(client, keys, "W-1")["group_id"]
        assert client.app.state.hotspots.holding
    # stopping gives the lease up, so another process takes over at once
    engine = make_engine(database_url)
    with engine.connect() as c:
        assert c.execute(select(HotspotState.holder)).scalar() is None
    engine.dispose()


def test_off_means_no_grouping(database_url, demo_bundle):
    with api_env(database_url, demo_bundle.path, hotspots=False) as (client, keys, _):
        assert client.app.state.hotspots is None
        post(client, keys, WATER)
        assert detail(client, keys, "W-1") is None and listing(client, keys)["data"] == []


def test_settings_keep_the_lease_longer_than_two_refreshes():
    with pytest.raises(ValidationError, match="must exceed twice hotspots_interval_s"):
        Settings(hotspots_interval_s=10, hotspots_lease_s=15)
    assert Settings(hotspots="off").hotspots is False


# --- the lease ---------------------------------------------------------------------------------

def _refreshers(url, n=2, **kw):
    engine = make_engine(url)
    lock = WriteLock(url)
    return engine, lock, [HotspotRefresher(engine, write_lock=lock, holder=f"r{k}", **kw) for k in range(n)]


def _assignments(S) -> dict:
    with S() as s:
        return dict(s.execute(select(HotspotAssignment.appeal_id, HotspotAssignment.group_id)).all())


def test_two_refreshers_on_one_database_only_one_groups(database_url, demo_bundle):
    with api_env(database_url, demo_bundle.path, hotspots=False) as (client, keys, S):
        engine, lock, (a, b) = _refreshers(database_url)
        try:
            post(client, keys, [*WATER, LAMP])
            results = {}
            threads = [threading.Thread(target=lambda r=r: results.__setitem__(r.holder, r.tick())) for r in (a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert sorted(results.values()) == [0, 3]  # one grouped all three, the other nothing
            leader, other = (a, b) if a.holding else (b, a)
            assert not other.holding
            post(client, keys, [W3, *TOURS])
            assert other.tick() == 0 and leader.tick() == 3 and other.tick() == 0
            got = _assignments(S)
            assert sorted(got) == ["T-1", "T-2", "W-1", "W-2", "W-3", "X-1"]
            assert got["W-1"] == got["W-2"] == got["W-3"] and got["T-1"] == got["T-2"]
            with S() as s:
                assert s.scalar(select(func.count()).select_from(HotspotGroup)) == 3
                assert s.scalar(select(HotspotState.next_group)) == 4
        finally:
            a.release(), b.release()
            lock.close()
            engine.dispose()


def test_a_dead_holder_is_replaced_ids_stay_and_it_cannot_write_afterwards(database_url, demo_bundle):
    with api_env(database_url, demo_bundle.path, hotspots=False) as (client, keys, S):
        engine, lock, (dead, heir) = _refreshers(database_url, lease_s=0.5, interval_s=0.1)
        try:
            post(client, keys, [*WATER, LAMP])
            assert dead.tick() == 3  # …and then it stops renewing, as if killed
            before = _assignments(S)
            assert heir.tick() == 0  # the lease is still running
            time.sleep(0.7)
            post(client, keys, [W3])
            assert heir.tick() == 1 and heir.holding  # took over: rebuilt from the stored groups
            after = _assignments(S)
            assert after["W-3"] == before["W-1"] and {k: after[k] for k in before} == before
            # the old holder wakes up with a stale grouper: fenced, it writes nothing
            post(client, keys, TOURS)
            assert dead.tick() == 0 and not dead.holding
            assert "T-1" not in _assignments(S)
            assert heir.tick() == 2
            got = _assignments(S)
            assert got["T-1"] == got["T-2"] not in set(before.values())
        finally:
            dead.release(), heir.release()
            lock.close()
            engine.dispose()


def test_a_restart_keeps_group_ids_and_numbers_new_groups_after_them(database_url, demo_bundle):
    from fastapi.testclient import TestClient

    from service.api import create_app

    with api_env(database_url, demo_bundle.path, **QUIET) as (client, keys, S):
        post(client, keys, [*WATER, LAMP])
        refresh(client)
        before = _assignments(S)
    # a new server process on the same database: it rebuilds from the stored groups
    with TestClient(create_app(Settings(database_url=database_url, model_dir=demo_bundle.path, **QUIET))) as client:
        post(client, keys, [W3, *TOURS])
        assert refresh(client) == 3
        after = _assignments(S)
    assert {k: after[k] for k in before} == before  # nothing re-clustered
    assert after["W-3"] == before["W-1"]  # the new re-post joins the stored group, by its stored id
    assert after["T-1"] == after["T-2"] not in set(before.values())
    numbers = sorted(int(g[1:]) for g in set(after.values()))
    assert numbers == [1, 2, 3]  # new groups are numbered after the stored ones, none reused


def test_seeding_a_grouper_from_assignments_continues_as_if_never_stopped():
    """HotspotGrouper.seed: a grouper rebuilt from the first half's stored assignments groups
    the second half exactly as the grouper that saw everything."""
    stream = [(a["id"], a["time"], a["text"], a["district"], a["user"]) for a in [*WATER, LAMP, W3, *TOURS]]
    stream += [("W-4", "2025-06-04T08:00:00", WATER[1]["text"] + "！", "东城区", "u7"),
               ("X-2", "2025-06-05T08:00:00", LAMP["text"].replace("一个多月", "两个月"), "东城区", "u8")]
    whole = HotspotGrouper()
    full = {i: whole.add(i, t, x, district=d, user=u) for i, t, x, d, u in stream}
    half = 4
    seeded = HotspotGrouper()
    to_whole = {}
    for i, t, x, d, u in stream[:half]:
        info = whole.appeal(i)
        gid = seeded.seed(i, t, x, group=full[i], district=d, user=u, repeat=info["repeat"],
                          repeat_of=info["repeat_of"])
        to_whole[gid] = full[i]
    assert seeded.appeal("W-1") == whole.appeal("W-1")
    for i, t, x, d, u in stream[half:]:
        gid = seeded.add(i, t, x, district=d, user=u)
        if gid not in to_whole:
            to_whole[gid] = full[i]
        assert to_whole[gid] == full[i], i
        assert seeded.appeal(i)["repeat_of"] == whole.appeal(i)["repeat_of"]
    assert full["W-4"] == full["W-1"] and full["X-2"] == full["X-1"]
    assert {k: v for k, v in seeded.group(seeded.group_of("W-1")).items() if k != "group_id"} == \
        {k: v for k, v in whole.group(full["W-1"]).items() if k != "group_id"}
