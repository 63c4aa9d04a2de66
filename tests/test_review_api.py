"""The review queue, label suspects and taxonomy changes through the API (ADR 0008), on
SQLite (and PostgreSQL when SUQIU_TEST_POSTGRES_URL is set), with the demo bundle's real
model. Texts are written for these tests."""
import pandas as pd
import pytest

from service import store
from tests.conftest import api_env

PHONE = "13812345678"
CONFIDENT = {"id": "C-1", "text": "小区暖气不热，家里只有十三度，老人孩子都冻感冒了，请供热公司尽快处理"}
VAGUE = {"id": "V-1", "text": f"请问这件事找谁？联系电话{PHONE}"}
VAGUE_AGAIN = {"id": "V-2", "text": f"请问这件事找谁，麻烦回复。联系电话{PHONE}"}
OTHERS = [
    {"id": "O-1", "text": "南湖景区导游强制游客购物，不买就不让上车，旅行社态度恶劣，要求退款"},
    {"id": "O-2", "text": "学校门口主干道车辆太快，孩子上学过马路很危险，请设置红绿灯"},
    {"id": "O-3", "text": "工厂夜里偷排废水，河道发黑发臭，鱼都死了"},
    {"id": "O-4", "text": "公司拖欠工资三个月不发，老板说没钱，工人生活困难"},
]


def h(keys, role="analyst"):
    return {"X-API-Key": keys[role]}


@pytest.fixture
def env(database_url, demo_bundle):
    with api_env(database_url, demo_bundle.path, hotspots=False) as (client, keys, S):
        r = client.post("/v1/appeals", json={"appeals": [CONFIDENT, VAGUE, VAGUE_AGAIN, *OTHERS]},
                        headers=h(keys, "admin"))
        assert r.status_code == 200, r.text
        tags = {t["id"]: t for t in r.json()["data"]}
        yield client, keys, S, tags


def queue(client, keys, role="analyst", **params):
    r = client.get("/v1/review-queue", params=params, headers=h(keys, role))
    assert r.status_code == 200, r.text
    return r.json()


def margin(tag):
    top = sorted(tag["category_scores"].values(), reverse=True)
    return top[0] - top[1]


def test_an_uncertain_appeal_ranks_above_a_confident_one(env):
    client, keys, _, tags = env
    assert margin(tags["V-1"]) < 0.5 < margin(tags["C-1"])
    ids = [it["id"] for it in queue(client, keys)["data"]]
    vague = "V-1" if "V-1" in ids else "V-2"
    assert ids.index(vague) < ids.index("C-1")
    item = next(it for it in queue(client, keys)["data"] if it["id"] == vague)
    assert "uncertain" in item["reasons"] and item["margin"] == pytest.approx(margin(tags[vague]), abs=1e-3)


def test_items_show_redacted_short_texts_and_current_tags(env):
    client, keys, _, tags = env
    page = queue(client, keys)
    assert page["kind"] == "unlabelled" and page["count"] == len(page["data"]) == 6
    item = next(it for it in page["data"] if it["id"] in ("V-1", "V-2"))
    assert PHONE not in item["text"] and "[手机号]" in item["text"]
    t = tags[item["id"]]
    assert (item["category"], item["confidence"], item["department"], item["topic"], item["model_version"]) == (
        t["category"], t["confidence"], t["department"], t["topic"], t["model_version"])
    assert item["top_categories"] == t["top_categories"][:3]
    long = queue(client, keys, limit=50)["data"]
    assert all(len(it["text"]) <= 161 for it in long)
    assert [it["score"] for it in long] == sorted((it["score"] for it in long), reverse=True)


def test_near_duplicates_never_share_a_page(env):
    client, keys, _, _ = env
    data = queue(client, keys)["data"]
    ids = [it["id"] for it in data]
    assert len({"V-1", "V-2"} & set(ids)) == 1
    kept = next(it for it in data if it["id"] in ("V-1", "V-2"))
    assert kept["similar"] == [{"V-1": "V-2", "V-2": "V-1"}[kept["id"]]]


def test_labelled_appeals_leave_the_queue(env):
    client, keys, _, tags = env
    first = queue(client, keys)["data"][0]["id"]
    r = client.post(f"/v1/appeals/{first}/labels", json={"category": tags[first]["category"]}, headers=h(keys))
    assert r.status_code == 200
    ids = [it["id"] for it in queue(client, keys)["data"]]
    assert first not in ids and len(ids) == 5
    # an urgency label alone leaves the category unreviewed: the appeal stays
    r = client.post("/v1/appeals/O-1/labels", json={"urgency": "routine"}, headers=h(keys))
    assert r.status_code == 200 and "O-1" in [it["id"] for it in queue(client, keys)["data"]]


def test_pages_follow_the_cursor_through_the_whole_ranking(env):
    client, keys, _, _ = env
    whole = [it["id"] for it in queue(client, keys, limit=100)["data"]]
    seen, cursor = [], None
    while True:
        page = queue(client, keys, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [it["id"] for it in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == whole and len(whole) == 6


@pytest.mark.parametrize("role, status", [("ingest", 403), ("analyst", 200), ("admin", 200), (None, 401)])
def test_roles(env, role, status):
    client, keys, _, _ = env
    headers = h(keys, role) if role else {}
    for kind in ("unlabelled", "suspect"):
        assert client.get("/v1/review-queue", params={"kind": kind}, headers=headers).status_code == status


@pytest.mark.parametrize("params, detail", [
    ({"kind": "label"}, [{"loc": ["query", "kind"], "msg": "Input should be 'unlabelled' or 'suspect'",
                          "type": "literal_error"}]),
    ({"cursor": "bm9wZQ"}, "cursor is not one this service returned"),
    ({"limit": 0}, [{"loc": ["query", "limit"], "msg": "Input should be greater than or equal to 1",
                     "type": "greater_than_equal"}]),
    ({"limit": 501}, [{"loc": ["query", "limit"], "msg": "Input should be less than or equal to 500",
                       "type": "less_than_equal"}]),
])
def test_bad_parameters_are_422(env, params, detail):
    client, keys, _, _ = env
    r = client.get("/v1/review-queue", params=params, headers=h(keys))
    assert r.status_code == 422 and r.json()["detail"] == detail


def test_suspects_of_the_last_retrain_are_listed_worst_first(env):
    client, keys, S, _ = env
    assert queue(client, keys, kind="suspect") == {"kind": "suspect", "data": [], "count": 0, "next_cursor": None}
    old = pd.DataFrame({"source": ["appeal:O-2"], "given": ["商贸旅游"], "suggested": ["交通运输"], "score": [0.01]})
    new = pd.DataFrame({"source": ["appeal:V-1", "base.csv:17", "appeal:gone"], "given": ["环境保护"] * 3,
                        "suggested": ["城乡建设"] * 3, "score": [0.2, 0.05, 0.1]})
    with S() as s:
        store.replace_label_suspects(s, old, run_id="r1")
        run = store.replace_label_suspects(s, new, run_id="r2", model_version="v9")
    assert run == "r2"
    page = queue(client, keys, kind="suspect", limit=1)
    first = page["data"][0]
    assert (first["source"], first["source_row"], first["appeal_id"], first["text"], first["score"]) == (
        "base.csv:17", 17, None, None, 0.05)
    second = queue(client, keys, kind="suspect", limit=1, cursor=page["next_cursor"])
    item = second["data"][0]
    assert (item["appeal_id"], item["given"], item["suggested"], item["run_id"], item["model_version"]) == (
        "V-1", "环境保护", "城乡建设", "r2", "v9")
    assert PHONE not in item["text"] and item["text"].startswith("请问这件事找谁")
    assert second["next_cursor"] is None  # the old run's suspect was replaced; "gone" is not stored


# --- taxonomy changes -----------------------------------------------------------------------

def test_categories_list_the_routing_data_with_departments(env):
    client, keys, _, _ = env
    r = client.get("/v1/categories", headers=h(keys))
    assert r.status_code == 200
    data = r.json()["data"]
    assert r.json()["count"] == 7 and all(c["source"] == "routing" and c["in_model"] for c in data)
    assert {"name": "城乡建设", "department": "市住房和城乡建设局", "source": "routing", "in_model": True,
            "added_by": None, "added_at": None} in data


def test_a_label_may_use_a_new_category_only_once_an_admin_added_it(env):
    client, keys, _, _ = env
    label = {"category": "數字城管", "reason": "新的类别"}
    r = client.post("/v1/appeals/V-1/labels", json=label, headers=h(keys))
    assert r.status_code == 422 and r.json()["detail"].startswith("unknown category '数字城管'; allowed: ['城乡建设'")
    assert "POST /v1/categories" in r.json()["detail"]
    new = {"name": " 數字城管 ", "department": "市数字化城市管理中心"}
    assert client.post("/v1/categories", json=new, headers=h(keys)).status_code == 403
    r = client.post("/v1/categories", json=new, headers=h(keys, "admin"))
    assert r.status_code == 201
    body = r.json()
    assert (body["name"], body["department"], body["source"], body["in_model"], body["added_by"]) == (
        "数字城管", "市数字化城市管理中心", "added", False, "test-admin")
    r = client.post("/v1/appeals/V-1/labels", json=label, headers=h(keys))
    assert r.status_code == 200 and r.json()[0]["new_value"] == "数字城管"
    listed = client.get("/v1/categories", headers=h(keys)).json()
    assert listed["count"] == 8 and listed["data"][-1]["name"] == "数字城管"
    detail = client.get("/v1/appeals/V-1", headers=h(keys)).json()
    assert detail["appeal"]["category"] == "数字城管"
    assert detail["predictions"][0]["category"] != "数字城管"  # the old prediction keeps its model's tag


@pytest.mark.parametrize("body", [{"name": "數字城管", "department": "别处"}, {"name": "城乡建设", "department": "别处"}])
def test_an_existing_category_is_409(env, body):
    client, keys, _, _ = env
    client.post("/v1/categories", json={"name": "数字城管", "department": "市数字化城市管理中心"},
                headers=h(keys, "admin"))
    r = client.post("/v1/categories", json=body, headers=h(keys, "admin"))
    assert r.status_code == 409 and r.json()["detail"] == f"category '{body['name'].replace('數', '数')}' already exists"


@pytest.mark.parametrize("body, loc", [({"name": "", "department": "x"}, ["body", "name"]),
                                       ({"name": "x" * 65, "department": "x"}, ["body", "name"]),
                                       ({"name": "x"}, ["body", "department"]),
                                       ({"name": "x", "department": "y", "extra": 1}, ["body"])])
def test_a_malformed_category_is_422(env, body, loc):
    client, keys, _, _ = env
    r = client.post("/v1/categories", json=body, headers=h(keys, "admin"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == loc


def test_a_category_of_spaces_only_is_422(env):
    client, keys, _, _ = env
    r = client.post("/v1/categories", json={"name": "\u3000 ", "department": "x"}, headers=h(keys, "admin"))
    assert r.status_code == 422
    assert r.json()["detail"] == "name and department must hold more than spaces and control characters"
