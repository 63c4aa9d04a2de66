"""Service behaviour that a change must not lose (issue 13), on SQLite and PostgreSQL: who may
do what (an analyst key cannot ingest, an ingest key cannot read or label), the list filters
really filter, a re-send that changes only the title is a conflict, and `suqiu ingest` (what
`make run` uses) really stores the file's appeals with their tags.

Each test was checked against a deliberate breakage of service/ (see the report of issue 13).
"""
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from service.auth import PERMISSIONS, ROLES
from service.db import Appeal, Label, Prediction, make_engine
from tests.conftest import api_env


@pytest.fixture
def env(database_url, demo_bundle):
    with api_env(database_url, demo_bundle.path) as e:
        yield e


def h(keys, role="admin"):
    return {"X-API-Key": keys[role]}


def count(S, table):
    with S() as s:
        return s.scalar(select(func.count()).select_from(table))


APPEAL = {"id": "A-1", "time": "2025-12-18T07:40:00", "title": "暖气不热",
          "text": "北山区梧桐郡5栋暖气从前天开始就不热了，屋里只有十二度，家里有婴儿", "district": "北山区"}


# --- Roles ------------------------------------------------------------------------------
def test_the_permissions_table():
    """Ingest keys (the hotline's systems) write and classify; analysts read, label, classify,
    scrape metrics and list model versions, but never ingest; admins do everything, alone
    changing the registry and the city's categories."""
    assert ROLES == ("ingest", "analyst", "admin")
    assert PERMISSIONS == {
        "ingest": {"appeals:write", "classify"},
        "analyst": {"appeals:read", "labels:write", "classify", "metrics", "models:read"},
        "admin": {"appeals:write", "appeals:read", "labels:write", "classify", "metrics", "models:read", "models:write",
                  "categories:write"},
    }


def test_an_analyst_key_cannot_ingest_and_nothing_is_stored(env):
    client, keys, S = env
    for body in (APPEAL, {"appeals": [APPEAL, {**APPEAL, "id": "A-2"}]}):
        r = client.post("/v1/appeals", json=body, headers=h(keys, "analyst"))
        assert r.status_code == 403, r.text[:120]
        assert r.json() == {"detail": "role 'analyst' may not appeals:write"}
    assert count(S, Appeal) == count(S, Prediction) == 0
    # the analyst may classify (tags without storing) and still stores nothing
    assert client.post("/v1/classify", json={"text": APPEAL["text"]}, headers=h(keys, "analyst")).status_code == 200
    assert count(S, Appeal) == 0
    # the same appeal from an ingest key is stored
    assert client.post("/v1/appeals", json=APPEAL, headers=h(keys, "ingest")).status_code == 200
    assert count(S, Appeal) == count(S, Prediction) == 1


def test_an_ingest_key_cannot_read_or_label(env):
    client, keys, S = env
    assert client.post("/v1/appeals", json=APPEAL, headers=h(keys, "ingest")).status_code == 200
    for path in ("/v1/appeals", "/v1/appeals/A-1", "/metrics"):
        r = client.get(path, headers=h(keys, "ingest"))
        assert r.status_code == 403, (path, r.text[:120])
        assert "A-1" not in r.text and "梧桐郡" not in r.text
    r = client.post("/v1/appeals/A-1/labels", json={"urgency": "critical", "reason": "x"}, headers=h(keys, "ingest"))
    assert r.status_code == 403, r.text[:120]
    assert count(S, Label) == 0
    with S() as s:
        assert s.scalar(select(Appeal.urgency).where(Appeal.id == "A-1")) != "critical"
    # the roles that may read and label can
    for role in ("analyst", "admin"):
        assert client.get("/v1/appeals/A-1", headers=h(keys, role)).status_code == 200
    r = client.post("/v1/appeals/A-1/labels", json={"urgency": "critical"}, headers=h(keys, "analyst"))
    assert r.status_code == 200 and count(S, Label) == 1


# --- List filters -----------------------------------------------------------------------
TEXTS = ["楼道里有很浓的煤气味，现在很危险", "小区暖气不热已经三天了，家里只有十二度", "建议增加公交线路", "你好",
         "请问", "路灯坏了", "我想说一下那个事情", "导游强制购物", "老板拖欠工资半年", "停水三天了"]


def _listed(client, keys, **params):
    ids, cursor = [], None
    while True:
        page = client.get("/v1/appeals", params={**params, "limit": 3, **({"cursor": cursor} if cursor else {})},
                          headers=h(keys, "analyst"))
        assert page.status_code == 200, page.text
        ids += [a["id"] for a in page.json()["data"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return ids


def test_the_urgency_and_needs_review_filters_return_exactly_the_matching_appeals(env):
    client, keys, _ = env
    r = client.post("/v1/appeals", json={"appeals": [{"id": f"F-{i}", "text": t} for i, t in enumerate(TEXTS)]},
                    headers=h(keys, "ingest"))
    assert r.status_code == 200, r.text
    tags = {t["id"]: t for t in r.json()["data"]}
    ids = [f"F-{i}" for i in range(len(TEXTS))]
    urgencies = {t["urgency"] for t in tags.values()}
    # premises: the appeals differ in both tags, so a filter that is ignored returns too much
    assert len(urgencies) == 3, urgencies
    assert {t["needs_review"] for t in tags.values()} == {True, False}
    for level in urgencies:
        expected = [i for i in ids if tags[i]["urgency"] == level]
        assert _listed(client, keys, urgency=level) == expected, level
    for flag in (True, False):
        expected = [i for i in ids if tags[i]["needs_review"] is flag]
        assert _listed(client, keys, needs_review=str(flag).lower()) == expected, flag
    both = [i for i in ids if tags[i]["urgency"] == "routine" and tags[i]["needs_review"]]
    assert 0 < len(both) < len([i for i in ids if tags[i]["urgency"] == "routine"])
    assert _listed(client, keys, urgency="routine", needs_review="true") == both
    assert _listed(client, keys, urgency="no-such-level") == []
    assert _listed(client, keys) == ids
    # the filters read the appeal's current tags: a correction moves it (and clears needs_review)
    moved = both[0]
    assert client.post(f"/v1/appeals/{moved}/labels", json={"urgency": "critical"},
                       headers=h(keys, "analyst")).status_code == 200
    assert moved in _listed(client, keys, urgency="critical")
    assert moved not in _listed(client, keys, urgency="routine")
    assert moved not in _listed(client, keys, needs_review="true")


# --- Idempotent re-sends ----------------------------------------------------------------
def test_a_resend_with_another_title_is_a_conflict(env):
    client, keys, S = env
    assert client.post("/v1/appeals", json=APPEAL, headers=h(keys, "ingest")).json()["data"][0]["created"] is True
    r = client.post("/v1/appeals", json={**APPEAL, "title": "暖气不热（补充）"}, headers=h(keys, "ingest"))
    assert r.status_code == 409, r.text[:120]
    assert r.json()["detail"].startswith("appeal 'A-1' already exists with different text")
    # in a batch beside a new appeal: the whole request is refused, the new one not stored
    r = client.post("/v1/appeals", json={"appeals": [{**APPEAL, "id": "A-2"}, {**APPEAL, "title": "别的标题"}]},
                    headers=h(keys, "ingest"))
    assert r.status_code == 409, r.text[:120]
    with S() as s:
        assert list(s.scalars(select(Appeal.id))) == ["A-1"]
        assert s.scalar(select(Appeal.title).where(Appeal.id == "A-1")) == "暖气不热"
    assert count(S, Prediction) == 1
    # the same title and text again: acknowledged, nothing new
    r = client.post("/v1/appeals", json=APPEAL, headers=h(keys, "ingest"))
    assert r.status_code == 200 and r.json()["data"][0]["created"] is False
    assert count(S, Appeal) == count(S, Prediction) == 1


# --- suqiu ingest -----------------------------------------------------------------------
def test_suqiu_ingest_stores_the_files_appeals_with_their_tags(database_url, demo_bundle, demo_frame, tmp_path,
                                                               monkeypatch):
    from corpora.records import appeal_texts
    from models.tagger import Tagger
    from service.cli import main

    monkeypatch.setenv("SUQIU_DATABASE_URL", database_url)
    rows = demo_frame[["id", "time", "title", "text", "district"]].iloc[::20].reset_index(drop=True)
    src = tmp_path / "appeals.csv"
    rows.to_csv(src, index=False)
    model = str(demo_bundle.path)
    assert main(["ingest", "--model", model, "--input", str(src), "-q", "--batch-size", "7"]) == 0

    S = sessionmaker(make_engine(database_url))
    expected = Tagger(demo_bundle).tag(appeal_texts(rows))
    with S() as s:
        stored = {a.id: a for a in s.scalars(select(Appeal))}
        preds = {p.appeal_id: p for p in s.scalars(select(Prediction))}
        assert sorted(stored) == sorted(rows["id"]) and len(stored) == len(rows) > 20
        assert sorted(preds) == sorted(stored) and count(S, Prediction) == len(rows)
        for r, tag in zip(rows.itertuples(), expected):
            a, p = stored[r.id], preds[r.id]
            assert (a.text, a.district) == (r.text, r.district)
            assert p.model_version == demo_bundle.version
            assert (a.category, a.urgency, a.needs_review) == (p.category, p.urgency, p.needs_review)
            assert p.category == tag["category"] and p.urgency == tag["urgency"], r.id
        seqs = sorted(a.seq for a in stored.values())

    # a second run of the same file stores nothing new
    assert main(["ingest", "--model", model, "--input", str(src), "-q"]) == 0
    assert count(S, Appeal) == count(S, Prediction) == len(rows)
    with S() as s:
        assert sorted(s.scalars(select(Appeal.seq))) == seqs

    # a file that changes a stored appeal's text is refused, and nothing of it is stored
    changed = rows.copy()
    changed.loc[0, "text"] = "别的内容"
    changed.loc[len(changed)] = {"id": "NEW-1", "time": None, "title": None, "text": "路灯坏了", "district": None}
    changed = changed.iloc[::-1]  # the new appeal first, in the same batch as the changed one
    bad = tmp_path / "changed.csv"
    changed.to_csv(bad, index=False)
    assert main(["ingest", "--model", model, "--input", str(bad), "-q"]) == 3
    assert count(S, Appeal) == len(rows)
