"""The dashboard (service/routes/dashboard.py) and the digest endpoint (service/routes/digests.py)
against the real app: a simulated northern city whose heating season starts in the last
week (corpora/simulate.py), stored through the API."""
import json
import math
from datetime import date

import pytest

from service.routes.dashboard import week_end_of
from service.routes.digests import negotiate
from tests.conftest import api_env

QUIET = {"hotspots_interval_s": 3600, "hotspots_lease_s": 7300}  # the tests drive the hotspot refreshes
LAST_DAY = "2024-11-24"  # a Sunday: the stream's last day, in the week the heating season starts


def h(keys, role="analyst"):
    return {"X-API-Key": keys[role]}


def _appeals(frame):
    def value(v):
        return None if v is None or isinstance(v, float) and math.isnan(v) else v
    out = []
    for r in frame.to_dict("records"):
        a = {k: value(r.get(k)) for k in ("id", "title", "text", "district", "user")}
        a["time"] = r["time"].isoformat()
        out.append({k: v for k, v in a.items() if v is not None})
    return out


def store(client, keys, appeals):
    for i in range(0, len(appeals), 500):
        r = client.post("/v1/appeals", json={"appeals": appeals[i:i + 500]}, headers=h(keys, "admin"))
        assert r.status_code == 200, r.text[:300]


@pytest.fixture(scope="module")
def city(tmp_path_factory, demo_bundle):
    from corpora.simulate import simulate_stream

    frame, _ = simulate_stream(start="2024-09-01", end=LAST_DAY, seed=3)
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'suqiu.db'}"
    with api_env(url, demo_bundle.path, **QUIET) as (client, keys, S):
        store(client, keys, _appeals(frame))
        client.app.state.hotspots.tick()
        yield client, keys


@pytest.fixture
def browser(city):
    """The module's client signed in through the login form (cookies cleared afterwards)."""
    client, keys = city
    r = client.post("/dashboard/login", data={"key": keys["analyst"]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    yield client, keys
    client.cookies.clear()


def test_pages_need_a_key_with_the_read_role(city):
    client, keys = city
    client.cookies.clear()
    for path in ("/dashboard", "/dashboard/weeks", "/dashboard/hotspots", "/dashboard/heat"):
        r = client.get(path, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/dashboard/login"), path
    form = client.get("/dashboard/login")
    assert form.status_code == 200 and '<form method="post" action="/dashboard/login">' in form.text
    for raw, status, says in (("sq_wrong", 401, "密钥无效或已吊销"), (keys["ingest"], 403, "不能查看数据"), ("", 401, "请输入")):
        r = client.post("/dashboard/login", data={"key": raw}, follow_redirects=False)
        assert r.status_code == status and says in r.text and "set-cookie" not in r.headers
    assert client.get("/dashboard", headers=h(keys), follow_redirects=False).status_code == 200  # the header works too


def test_login_sets_a_strict_httponly_cookie_and_refuses_other_origins(city):
    client, keys = city
    client.cookies.clear()
    r = client.post("/dashboard/login", data={"key": keys["analyst"]}, follow_redirects=False,
                    headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "set-cookie" not in r.headers
    r = client.post("/dashboard/login", data={"key": keys["analyst"]}, follow_redirects=False,
                    headers={"Origin": "http://testserver"})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("suqiu_key=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie  # plain http here; https sets Secure
    r = client.post("/dashboard/logout", follow_redirects=False)
    assert r.status_code == 303 and 'suqiu_key=""' in r.headers["set-cookie"]
    client.cookies.clear()


def test_the_cookie_opens_reads_never_writes(browser):
    client, keys = browser
    assert client.get("/v1/appeals", params={"limit": 1}).status_code == 200
    assert client.get("/v1/hotspots", params={"limit": 1}).status_code == 200
    appeal_id = client.get("/v1/appeals", params={"limit": 1}).json()["data"][0]["id"]
    assert client.get(f"/v1/appeals/{appeal_id}").status_code == 200
    assert client.post(f"/v1/appeals/{appeal_id}/labels", json={"urgency": "urgent"}).status_code == 401
    assert client.post("/v1/classify", json={"text": "停水三天"}).status_code == 401
    assert client.post("/v1/appeals", json={"id": "C-1", "text": "停水三天"}).status_code == 401
    assert client.get("/metrics").status_code == 401


def test_home_shows_this_weeks_alerts_and_links_the_digest(browser):
    client, _ = browser
    r = client.get("/dashboard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert f"截至 {LAST_DAY} 的 7 天" in page
    assert "冬季采暖" in page and "季节性上升" in page and "明显偏高" in page  # the heating season starts
    assert f'href="/v1/digests/{LAST_DAY}"' in page
    assert "<script" not in page and "http://" not in page.replace("http://testserver", "")
    assert "script-src" not in r.headers["content-security-policy"]  # default-src 'none': no script runs
    assert "default-src 'none'" in r.headers["content-security-policy"]
    css = client.get("/dashboard/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_weeks_link_each_digest(browser):
    client, _ = browser
    page = client.get("/dashboard/weeks").text
    for week in ("2024-09-01", "2024-10-06", LAST_DAY):
        assert f'href="/v1/digests/{week}"' in page
    assert page.index("2024-11-24") < page.index("2024-09-01")  # newest first


def test_hotspots_and_heat_table(browser):
    client, _ = browser
    r = client.get("/dashboard/hotspots", params={"week": LAST_DAY})
    assert r.status_code == 200 and "截至 2024-11-24 的一周" in r.text
    assert "/v1/hotspots/g" in r.text
    heat = client.get("/dashboard/heat", params={"week": "2024-11-20"}).text  # any day of the week
    assert "截至 2024-11-24 的一周" in heat and "东城区" in heat and "城乡建设" in heat
    assert 'class="n h5"' in heat  # the busiest cell
    assert "这一周没有诉求" in client.get("/dashboard/heat", params={"week": "2023-01-01"}).text
    assert client.get("/dashboard/heat", params={"week": "2024-13-01"}).status_code == 422


def test_digest_by_accept_header(browser):
    client, keys = browser
    page = client.get(f"/v1/digests/{LAST_DAY}", headers={"Accept": "text/html,*/*;q=0.8"})  # by the cookie
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["content-security-policy"] and "<script" not in page.text
    d = client.get(f"/v1/digests/{LAST_DAY}", headers=h(keys)).json()  # no Accept: JSON
    assert d["week_ending"] == LAST_DAY and d["headline"]["received"]["value"] > 0
    md = client.get(f"/v1/digests/{LAST_DAY}", headers={**h(keys), "Accept": "text/markdown"})
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert client.get(f"/v1/digests/{LAST_DAY}", headers={**h(keys), "Accept": "image/png"}).status_code == 406
    r = client.get("/v1/digests/2020-01-05", headers=h(keys))
    assert r.status_code == 404 and r.json()["detail"].startswith("No digest for the week ending 2020-01-05")


@pytest.mark.parametrize("bad", ["2024-02-30", "1969-12-28", "2100-01-03", "20241124", "2024-1-1", "yesterday",
                                 "２０２４-11-24"])
def test_digest_dates_are_checked(city, bad):
    client, keys = city
    r = client.get(f"/v1/digests/{bad}", headers=h(keys))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["path", "week_ending"] and bad not in r.text


def test_digest_needs_the_read_role(city):
    client, keys = city
    client.cookies.clear()
    assert client.get(f"/v1/digests/{LAST_DAY}").status_code == 401
    assert client.get(f"/v1/digests/{LAST_DAY}", headers=h(keys, "ingest")).status_code == 403


def test_digest_and_dashboard_on_either_database(database_url, demo_bundle, demo_frame):
    """The digest and the dashboard read the service's own database, SQLite or PostgreSQL."""
    week = demo_frame[demo_frame["time"].between("2025-06-01", "2025-06-30")]
    with api_env(database_url, demo_bundle.path, **QUIET) as (client, keys, _):
        store(client, keys, [{k: v for k, v in r.items() if isinstance(v, str)}
                             for r in week[["id", "time", "title", "text", "district"]].to_dict("records")])
        r = client.get("/v1/digests/2025-06-15", headers=h(keys))
        assert r.status_code == 200, r.text[:300]
        d = json.loads(r.text)
        stored = set(week[week["time"].between("2025-06-09", "2025-06-15T23:59:59")]["id"])
        assert set(d["headline"]["received"]["ids"]) == stored
        client.app.state.hotspots.tick()
        pages = {path: client.get(path, headers=h(keys)) for path in
                 ("/dashboard", "/dashboard/weeks", "/dashboard/hotspots", "/dashboard/heat")}
        assert {p: r.status_code for p, r in pages.items()} == dict.fromkeys(pages, 200)
        newest = date.fromisoformat(week["time"].max()[:10])
        assert f"截至 {newest} 的 7 天" in pages["/dashboard"].text
        assert 'href="/v1/digests/2025-06-15"' in pages["/dashboard/weeks"].text
        assert f"截至 {week_end_of(newest)} 的一周" in pages["/dashboard/heat"].text


@pytest.mark.parametrize("accept, fmt", [
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "html"),
    ("application/json", "json"), ("*/*", "json"), ("", "json"), ("text/markdown", "md"),
    ("text/*;q=0.5, application/json;q=0.4", "html"), ("application/json;q=0, text/html;q=0.1", "html"),
    ("text/html;q=0, */*", "json"), ("image/*", None), ("application/json;q=x", None),
])
def test_negotiate(accept, fmt):
    assert negotiate(accept) == fmt


def test_alerts_are_computed_once_per_day(browser, monkeypatch):
    """(Last in this module: it stores an appeal of the next day.)"""
    from models.trends import TrendDetector

    client, keys = browser
    fits = []
    real = TrendDetector.fit
    monkeypatch.setattr(TrendDetector, "fit", lambda self, frame, y=None: fits.append(len(frame)) or real(self, frame))
    client.get("/dashboard")
    fits.clear()
    client.get("/dashboard")
    assert fits == []  # the same day: the alerts computed before
    store(client, keys, [{"id": "NEXT-DAY", "time": "2024-11-25T09:00:00", "district": "东城区",
                          "text": "小区暖气不热，室温只有十五度"}])
    assert "截至 2024-11-25 的 7 天" in client.get("/dashboard").text
    client.get("/dashboard")
    assert len(fits) == 1


def test_weeks_are_counted_in_sql_as_appeal_by_appeal(database_url):
    """The weeks page's SQL aggregate (per quarter hour, then per local week) against
    counting each stored appeal in Python: around local midnights and Sunday ends, with a
    time missing (the receipt time counts) and on a zone with summer time."""
    from collections import Counter
    from datetime import date, datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from service import store
    from service.db import Appeal, make_engine, upgrade
    from service.routes.dashboard import _weeks, week_end_of

    upgrade(database_url)
    engine = make_engine(database_url)
    base = datetime(2025, 3, 2, 15, 0, tzinfo=timezone.utc)  # Sunday 23:00 in Shanghai
    appeals, tags = [], []
    for i in range(300):
        t = base + timedelta(minutes=37 * i * i % (60 * 24 * 60))
        appeals.append({"id": f"w{i}", "time": None if i % 41 == 0 else t, "title": None, "text": f"第{i}件诉求",
                        "district": None, "user": None, "channel": None})
        tags.append({"model_version": "m", "category": "城乡建设", "confidence": 0.9,
                     "category_scores": {"城乡建设": 0.9}, "needs_review": i % 3 == 0,
                     "urgency": ("critical", "urgent", "routine", None)[i % 4]})
    with Session(engine) as s:
        store.register_model(s, version="m", path="-", manifest={})
        store.ingest(s, appeals=appeals, tags=tags)
        rows = s.execute(select(Appeal.time, Appeal.received_at, Appeal.urgency, Appeal.needs_review)).all()
        for zone in (ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin")):
            want: dict[date, Counter] = {}
            for r in rows:
                when = (r.time or r.received_at).astimezone(zone)
                c = want.setdefault(week_end_of(when.date()), Counter())
                c["appeals"] += 1
                c[r.urgency or "none"] += 1
                c["review"] += bool(r.needs_review)
            last = max(want)
            got = _weeks(s, zone, last, weeks=10_000)
            assert got == [{"week_ending": w, "appeals": c["appeals"], "critical": c["critical"],
                            "urgent": c["urgent"], "review": c["review"]} for w, c in sorted(want.items(), reverse=True)]
    engine.dispose()
