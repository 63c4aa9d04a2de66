"""Hotspot grouping (models/hotspots.py), place extraction (corpora/places.py) and
`suqiu hotspots`. Texts are written for these tests; the real-data check skips without
../shared."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from corpora.places import Gazetteer, find_places, place_key
from models.hotspots import HotspotGrouper, describe, heat_score
from service.cli import main
from tests.conftest import SHARED, need

WATER = "幸福里小区从昨天开始停水，到现在已经三天了，水压一直很低，家里老人孩子生活很不方便，请尽快处理"
STREAM = [  # id, time, text, user
    ("a1", "2024-06-01 08:00", WATER, "u1"),
    ("a2", "2024-06-01 09:30", WATER, "u2"),  # exact re-post by someone else
    ("a3", "2024-06-02 10:00", "幸福里小区停水三天了，水压很低，老人孩子生活不方便，希望尽快恢复供水", "u3"),
    ("a4", "2024-06-02 11:00", WATER.replace("幸福里", "阳光花园"), "u4"),  # same problem, other 小区
    ("a5", "2024-06-03 15:00", "导游强制游客购物，不买就不让上车，旅行社态度恶劣，要求退款", "u5"),
    ("a6", "2024-06-04 08:00", "幸福里小区停水问题我已经多次反映，至今未解决，水压还是很低，请相关部门尽快处理", "u6"),
    ("a7", "2024-06-05 09:00", "幸福里小区还在停水，我前天反映过水压低的问题，物业说在修，什么时候能恢复", "u1"),
]


def _frame(rows=STREAM):
    return pd.DataFrame(rows, columns=["id", "time", "text", "user"])


@pytest.fixture
def grouped():
    g = HotspotGrouper()
    ids = g.add_frame(_frame(), progress=False)
    return g, dict(zip(_frame()["id"], ids))


# --- places -------------------------------------------------------------------------------
@pytest.mark.parametrize("text, best, kind", [
    ("投诉A市A3区洋湖街道幸福里小区停水三天", "幸福里小区", "place"),
    ("坚决反对在A7县诺亚山林小区门口设置医院", "诺亚山林小区", "place"),
    ("王家村的村道坏了好几年", "王家村", "place"),
    ("A市三一大道全线快速化改造何时启动", "三一大道", "road"),
    ("芙蓉区东湖街道路灯不亮", "东湖街道", "township"),
    ("A5区交通很拥堵", "A5区", "district"),
    ("住宅小区的马路上很乱", None, None),
    ("市委市政府要重视", None, None),
])
def test_place_extraction(text, best, kind):
    m = find_places(text)
    assert (m.best.name if m.best else None) == best
    assert (m.best.kind if m.best else None) == kind


def test_given_district_and_gazetteer():
    m = find_places("业主反映五矿万境物业乱收费", district="A5区")
    assert m.district == "A5区" and m.best.kind == "place" or m.best.name == "A5区"
    g = Gazetteer({"五矿万境": "place"})
    m = find_places("业主反映五矿万境物业乱收费", district="A5区", gazetteer=g)
    assert m.best.name == "五矿万境" and m.district == "A5区"
    assert find_places("没有地名的诉求", district="A1区").best.name == "A1区"


def test_place_key_joins_spellings_of_one_place():
    assert place_key("阳光花园小区") == place_key("阳光花园") == place_key("阳光花园社区")
    assert place_key("幸福里小区") != place_key("阳光花园小区")


# --- grouping -----------------------------------------------------------------------------
def test_exact_reposts_share_a_group_whatever_the_time():
    g = HotspotGrouper(window_days=30)
    a = g.add("x1", "2024-01-01", "楼道灯坏了一个月没人修，晚上上下楼很危险")
    b = g.add("x2", "2024-09-01", "楼道灯坏了一个月没人修，晚上上下楼很危险！！")  # punctuation differs
    assert a == b


def test_same_issue_groups_and_unrelated_never_joins(grouped):
    _, gid = grouped
    assert gid["a1"] == gid["a2"] == gid["a3"] == gid["a6"] == gid["a7"]
    assert gid["a5"] not in {gid[k] for k in gid if k != "a5"}


def test_two_different_xiaoqu_with_the_same_problem_stay_apart(grouped):
    _, gid = grouped
    assert gid["a4"] != gid["a1"]


def test_time_window_is_respected():
    g = HotspotGrouper(window_days=30, place_window_days=30)
    a = g.add("t1", "2024-01-01", WATER)
    b = g.add("t2", "2024-01-20", WATER.replace("三天", "四天"))
    c = g.add("t3", "2024-05-01", WATER.replace("三天", "五天"))  # > 30 days after the group's last appeal
    assert a == b and c != a


def test_the_same_place_keeps_a_longer_window():
    g = HotspotGrouper(window_days=30, place_window_days=180)
    a = g.add("w1", "2024-01-01", WATER)
    b = g.add("w2", "2024-05-01", WATER.replace("三天", "五天"))  # 121 days later, same 小区, same matter
    c = g.add("w3", "2024-12-01", WATER.replace("三天", "六天"))  # beyond both windows
    assert a == b and c != a


STATION = [  # one mixing station next to one 小区, described by different people in different words
    "金桂园小区旁边的搅拌站每天晚上作业，噪音很大，灰尘飘进家里，窗户都不敢开，请环保部门查处",
    "金桂园小区业主反映：隔壁搅拌站半夜还在生产，罐车进出轰隆响，噪音扰民，灰尘严重，孩子咳嗽",
    "金桂园小区附近的搅拌站灰尘太大，晚上机器噪音吵得睡不着，这个搅拌站有没有环评手续",
]


def test_different_words_about_one_mixing_station_at_one_xiaoqu_join():
    g = HotspotGrouper()
    ids = [g.add(f"s{k}", f"2024-03-0{k + 1}", text) for k, text in enumerate(STATION)]
    assert len(set(ids)) == 1


def test_the_same_words_about_another_xiaoqu_stay_apart():
    g = HotspotGrouper()
    ids = [g.add(f"s{k}", f"2024-03-0{k + 1}", text) for k, text in enumerate(STATION)]
    other = g.add("o1", "2024-03-05", STATION[0].replace("金桂园", "翠湖苑"))  # same words, another 小区
    unrelated = g.add("o2", "2024-03-06", "金桂园小区电梯经常坏，物业收了维修费也不修，老人上下楼很困难")
    assert other != ids[0] and unrelated != ids[0]


def test_a_named_company_is_a_place():
    assert find_places("K1区宏达炉料有限公司排放废气").best.name == "宏达炉料有限公司"
    assert find_places("开发商银泰置业捆绑销售车位").best.name == "银泰置业"
    assert find_places("物业公司不作为").best is None  # a generic firm is not a place
    g = HotspotGrouper()
    a = g.add("c1", "2024-04-01", "银泰置业开发的楼盘强制捆绑销售车位，不买车位就不给办理购房手续")
    b = g.add("c2", "2024-04-20", "投诉银泰置业捆绑车位：交房时要求业主必须购买地下车位，否则不给交钥匙，这是霸王条款")
    c = g.add("c3", "2024-04-21", "投诉金盛置业捆绑车位：交房时要求业主必须购买地下车位，否则不给交钥匙，这是霸王条款")
    assert a == b and c != a


def test_no_chaining_through_neighbours():
    """A–B–C–D, each sharing about half its text with the next: B matches A (the group's
    first appeal) and becomes a representative, C matches B and joins, D matches only C
    (not a representative) and must open its own group."""
    s = ["垃圾站臭气熏天苍蝇蚊子特别多", "清运车凌晨四点作业噪音很大", "清运车还漏油路面又脏又滑",
         "电动车乱停乱放堵住消防通道", "楼道里堆满杂物存在火灾隐患", "健身器材损坏多年无人维修"]
    g = HotspotGrouper(threshold=0.4)
    a = g.add("c1", "2024-07-01", "，".join(s[0:3]))
    b = g.add("c2", "2024-07-02", "，".join(s[1:4]))
    c = g.add("c3", "2024-07-03", "，".join(s[2:5]))
    d = g.add("c4", "2024-07-04", "，".join(s[3:6]))
    assert a == b == c
    assert d != a


def test_repeat_cue_and_same_sender_are_flagged_and_linked(grouped):
    g, _ = grouped
    cue = g.appeal("a6")
    assert cue["repeat"] and cue["repeat_of"]  # 多次反映 / 至今未解决
    again = g.appeal("a7")  # u1 wrote a1 before
    assert again["repeat"] and again["repeat_of"] == ["a1"]
    assert not g.appeal("a3")["repeat"] and not g.appeal("a5")["repeat"]


def test_incremental_add_matches_add_frame():
    frame = _frame()
    batch = HotspotGrouper().add_frame(frame, progress=False)
    one = HotspotGrouper()
    inc = [one.add(r.id, r.time, r.text, user=r.user) for r in frame.itertuples()]
    assert list(batch) == inc
    assert one.group_of("a3") == batch[2]


def test_add_frame_orders_by_time_and_returns_row_order():
    frame = _frame()[::-1].reset_index(drop=True)
    ids = HotspotGrouper().add_frame(frame, progress=False)
    assert isinstance(ids, np.ndarray) and len(ids) == len(frame)
    assert ids[list(frame["id"]).index("a1")] == "g000001"  # the earliest appeal opened the first group


def test_bad_input_is_refused_with_a_clear_message():
    g = HotspotGrouper()
    g.add("1", None, "路灯不亮")
    with pytest.raises(ValueError, match="already added"):
        g.add("1", None, "路灯不亮了")
    with pytest.raises(ValueError, match="empty"):
        g.add("2", None, "  ，。")
    with pytest.raises(ValueError, match="threshold"):
        HotspotGrouper(threshold=1.5).add("1", None, "x")
    with pytest.raises(ValueError, match="'text'"):
        HotspotGrouper().add_frame(pd.DataFrame({"id": [1]}), progress=False)
    with pytest.raises(KeyError):
        g.group_of("nope")


def test_groups_contract_and_redacted_summary():
    g = HotspotGrouper()
    g.add("p1", "2024-06-01", WATER + "，联系电话13812345678", user="u1", likes=5, urgency="urgent")
    g.add("p2", "2024-06-02", WATER + "，联系电话13812345678", user="u2", likes=1, urgency="routine")
    g.add("p3", "2024-06-03", "导游强制购物", user="u3")
    rows = g.groups()
    assert len(rows) == 1  # min_size=2
    r = rows[0]
    assert set(r) == {"group_id", "appeal_ids", "size", "people", "place", "first_time", "last_time", "heat",
                      "summary", "keywords", "districts", "repeats"}
    assert r["appeal_ids"] == ["p1", "p2"] and r["size"] == 2 and r["people"] == 2
    assert r["place"] == "幸福里小区" and r["summary"].startswith("幸福里小区：")
    assert r["first_time"].startswith("2024-06-01") and r["last_time"].startswith("2024-06-02")
    assert 0 <= r["heat"] <= 100
    text = json.dumps(rows, ensure_ascii=False)
    assert "13812345678" not in text and "1381234" not in text
    assert g.groups(since="2024-06-02") == []  # one appeal left in the window: below min_size
    assert g.groups(district="A9区") == []
    assert len(g.groups(min_size=1)) == 2


def test_heat_grows_with_people_and_recency():
    small = heat_score(people=2, size=2, recent=0, earlier=2, days_since_last=20)
    big = heat_score(people=30, size=40, recent=30, earlier=5, days_since_last=0)
    assert 0 <= small < big <= 100
    assert heat_score(people=5, size=5, recent=5, earlier=0, days_since_last=0, likes=500) > \
        heat_score(people=5, size=5, recent=5, earlier=0, days_since_last=0, likes=0)


def test_describe_names_place_and_matter_redacted():
    place, words = describe([WATER, WATER + "电话13812345678", "幸福里小区停水，水压低"])
    assert place == "幸福里小区" and "停水" in words and len(words) <= 3
    assert not any("138" in w for w in words)


# --- CLI ----------------------------------------------------------------------------------
def test_cli_writes_jsonl_and_refuses_a_bad_file(tmp_path, capsys):
    src = tmp_path / "appeals.csv"
    _frame().to_csv(src, index=False)
    out = tmp_path / "hot.jsonl"
    assert main(["hotspots", "--input", str(src), "--output", str(out), "-q"]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows and all(r["size"] >= 2 for r in rows)
    assert any({"a1", "a2", "a3"} <= set(r["appeal_ids"]) for r in rows)
    assert main(["hotspots", "--input", str(src), "--output", str(out), "-q", "--until", "2024-05-01"]) == 0
    assert out.read_text(encoding="utf-8") == ""

    bad = tmp_path / "bad.csv"
    bad.write_text("id,when\n1,2024-01-01\n", encoding="utf-8")
    assert main(["hotspots", "--input", str(bad), "--output", str(out), "-q"]) == 3
    assert "no 'text' column" in capsys.readouterr().err
    assert main(["hotspots", "--input", str(src), "--output", str(out), "-q", "--since", "June"]) == 3
    assert "--since 'June' is not a date" in capsys.readouterr().err


# --- real data (optional) -----------------------------------------------------------------
def test_real_reposts_share_groups():
    from corpora.records import appeal_texts, read_appeals

    path = need(SHARED / "tipdm2020c" / "appeals_unlabelled_hot.csv")
    frame = read_appeals(path).frame.iloc[:800].copy()
    frame["text"] = appeal_texts(frame)
    ids = HotspotGrouper().add_frame(frame, progress=False)
    key = frame["text"].str.replace(r"[\W_]+", "", regex=True).str.lower()
    for _, idx in pd.Series(range(len(frame))).groupby(key.to_numpy()):
        assert len(set(ids[idx.to_numpy()])) == 1


# --- the batch path (add_frame) against one appeal at a time --------------------------------
_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def _signature_one_at_a_time(g, stripped):
    """MinHash signature of one text as the grouper first computed it (kept as the reference)."""
    codes = np.frombuffer(stripped.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    k = g.shingle_size
    if len(codes) < k:
        codes = np.concatenate([codes, np.zeros(k - len(codes), dtype=np.uint64)])
    n = len(codes) - k + 1
    x = codes[:n].copy()
    for i in range(1, k):
        x = x * np.uint64(0x110001) + codes[i:i + n]
    x = np.unique(x)
    x ^= x >> np.uint64(30)
    x *= _MIX[0]
    x ^= x >> np.uint64(27)
    x *= _MIX[1]
    x ^= x >> np.uint64(31)
    return ((g._a[:, None] * x[None, :]).min(axis=1) >> np.uint64(32)).astype(np.uint32)


def test_batch_signatures_equal_one_at_a_time():
    g = HotspotGrouper()
    g._state()
    texts = ["a", "ab", "abc", "幸福里小区停水", WATER * 3] + [f"{i}号楼漏水{'很' * i}严重" for i in range(40)]
    for chunk in (1, 7, 8192):
        got = g._signatures(texts, chunk=chunk)
        for t, row in zip(texts, got):
            np.testing.assert_array_equal(row, _signature_one_at_a_time(g, t))


def test_places_with_a_district_as_find_places_gives_them():
    g = HotspotGrouper()
    g._state()
    for text in ["投诉A市A3区洋湖街道幸福里小区停水三天", "没有地名的诉求", "A5区交通很拥堵", "解放路上积水"]:
        for district in (None, "A1区", "东城区"):
            tf = g._text_features(text, district)
            m = find_places(text, district=district)
            assert (tf.best, tf.district) == (m.best, m.district), (text, district)


def test_add_frame_groups_as_adding_one_at_a_time():
    """add_frame computes each distinct text's features once (re-posts, one text in several
    districts) and signatures in a batch; it must group exactly as add() does."""
    from corpora.simulate import CityConfig, simulate_stream

    frame, _ = simulate_stream(start="2024-05-01", end="2024-05-12", city=CityConfig(base_per_day=40, senders=True),
                               seed=5)
    frame = frame.copy()
    frame["time"] = pd.to_datetime(frame["time"])
    frame.loc[frame.index[::50], "district"] = None
    one = HotspotGrouper()
    order = frame.sort_values("time", kind="stable")
    ids = {r.id: one.add(r.id, r.time.isoformat(), r.text, district=r.district, user=r.user)
           for r in order.itertuples()}
    batch = HotspotGrouper()
    got = batch.add_frame(frame[["id", "time", "text", "district", "user"]], progress=False)
    assert list(got) == [ids[i] for i in frame["id"]]
    assert batch.groups() == one.groups()
    assert [batch.appeal(i) for i in frame["id"]] == [one.appeal(i) for i in frame["id"]]


# --- heat, one part at a time ---------------------------------------------------------------
def test_heat_is_the_weighted_mean_of_its_parts():
    # every part at one half: 50 whatever the weights
    half = {"people": 5, "size": 10, "recent": 7, "earlier": 21, "days_since_last": 14}
    assert heat_score(**half) == 50.0
    assert heat_score(**half, urgency=["critical", "routine", "unknown"], likes=20) == 50.0
    # no recent appeal, no time known: growth and recency are 0; people .5 (x30), volume .5 (x20)
    assert heat_score(people=5, size=10, recent=0, earlier=3, days_since_last=None) == round(100 * 25 / 80, 1)
    # urgency and likes present count with their weights; urgency only of the grades known
    assert heat_score(people=5, size=10, recent=0, earlier=0, days_since_last=None, urgency=["critical"]) == \
        round(100 * (25 + 10) / 90, 1)
    assert heat_score(people=5, size=10, recent=0, earlier=0, days_since_last=None, urgency=["bogus"], likes=0) == \
        round(100 * 25 / 90, 1)
    # a growth of only recent appeals is 1; a last appeal in the future counts as today; negative likes as none
    assert heat_score(people=5, size=10, recent=3, earlier=0, days_since_last=-2, likes=-5) == \
        round(100 * (25 + 15 + 15) / 90, 1)
    assert heat_score(people=10, size=20, recent=0, earlier=0, days_since_last=28) == \
        round(100 * (30 * 0.75 + 20 * 0.75 + 15 * 0.25) / 80, 1)


# --- one grouper seen from every reading method ---------------------------------------------
CITY = [  # id, time, text, district, user, likes, urgency
    ("h1", "2024-06-01 08:00", WATER, "A1区", "u1", 3, "urgent"),
    ("h2", "2024-06-03 08:00", WATER + "！", "A2区", "u2", float("nan"), "critical"),
    ("h3", "2024-06-10 08:00", "幸福里小区停水问题多次反映至今未解决，水压很低", " Ａ1区 ", "", None, None),
    ("h4", None, "阳光花园小区门口垃圾成堆没人清理，苍蝇很多", None, None, None, None),
    ("h5", None, "阳光花园小区门口垃圾成堆没人清理，苍蝇很多！", None, None, None, None),
    ("h6", "2024-06-05 12:00", "导游强制游客购物，不买就不让上车，旅行社态度恶劣", "A3区", "u6", None, None),
]


@pytest.fixture(scope="module")
def city():
    g = HotspotGrouper()
    for i, t, text, d, u, likes, urg in CITY:
        g.add(i, t, text, district=d, user=u, likes=likes, urgency=urg)
    return g


def test_groups_report_size_people_times_districts_and_repeats(city):
    water, litter = city.groups()
    assert water["appeal_ids"] == ["h1", "h2", "h3"] and water["size"] == 3
    assert water["people"] == 3  # u1, u2 and one appeal without a sender ("" is none)
    assert (water["first_time"], water["last_time"]) == ("2024-06-01T08:00:00", "2024-06-10T08:00:00")
    assert water["districts"] == ["A1区", "A2区"]  # " Ａ1区 " is A1区
    assert water["repeats"] == [{"id": "h3", "repeat_of": ["h1", "h2"]}]  # 多次反映: linked to the earlier ones
    assert water["place"] == "幸福里小区" and water["keywords"][:2] == ["停水", "水压"]
    # as of the last appeal: h3 in the last 7 days, h1 and h2 (exactly 7 days before) in the 21 before
    assert water["heat"] == heat_score(people=3, size=3, recent=1, earlier=2, days_since_last=0,
                                       urgency=["urgent", "critical"], likes=3)
    # no times, no senders: one person per distinct text, and a re-post is the same text
    assert litter["appeal_ids"] == ["h4", "h5"] and litter["people"] == 1
    assert litter["first_time"] is None and litter["last_time"] is None and litter["districts"] == []
    assert litter["heat"] == heat_score(people=1, size=2, recent=0, earlier=0, days_since_last=None)
    assert litter["summary"].startswith("阳光花园小区：")


def test_groups_are_hottest_first_then_by_id(city):
    rows = city.groups(min_size=1)
    assert [r["group_id"] for r in rows] == ["g000001", "g000003", "g000002"]
    assert [r["heat"] for r in rows] == sorted((r["heat"] for r in rows), reverse=True)


def test_groups_period_and_district_filters(city):
    # appeals outside the period are not counted; appeals without a time are outside any period
    assert [r["appeal_ids"] for r in city.groups(since="2024-06-03")] == [["h2", "h3"]]
    assert [r["appeal_ids"] for r in city.groups(until="2024-06-03")] == [["h1", "h2"]]  # a date: its whole day
    assert city.groups(until="2024-06-03T00:00:00") == []  # a time: up to it
    assert [r["appeal_ids"] for r in city.groups(since="2024-06-01 08:00", until="2024-06-01 08:00", min_size=1)] \
        == [["h1"]]
    both = city.groups(since="2024-06-02", until="2024-06-10")
    assert [r["appeal_ids"] for r in both] == [["h2", "h3"]]
    # heat as of the end of the period: h3 (0.67 days before) recent, h2 in the 21 days before
    assert both[0]["heat"] == heat_score(people=2, size=2, recent=1, earlier=1, days_since_last=16 / 24 - 1e-9,
                                         urgency=["critical"])
    assert [r["appeal_ids"] for r in city.groups(district="A2区")] == [["h1", "h2", "h3"]]
    assert [r["appeal_ids"] for r in city.groups(district="Ａ3区", min_size=1)] == [["h6"]]
    assert city.groups(district="A9区", min_size=1) == []


def test_one_group_in_full_as_groups_lists_it(city):
    listed = {r["group_id"]: r for r in city.groups(min_size=1, until="2024-06-30T00:00:00")}
    for gid in ("g000001", "g000003"):
        assert city.group(gid, until="2024-06-30T00:00:00") == listed[gid]
    everything = {r["group_id"]: r for r in city.groups(min_size=1)}  # as of the latest appeal seen
    for gid in ("g000001", "g000002", "g000003"):
        assert city.group(gid) == everything[gid]
    for bad in ("g000004", "g000000", "g1", "gg1", "x", "", 1):
        with pytest.raises(KeyError, match="is not known"):
            city.group(bad)


def test_appeal_reports_group_place_and_repeat(city):
    assert city.appeal("h3") == {"group_id": "g000001", "place": "幸福里小区", "repeat": True,
                                 "repeat_of": ["h1", "h2"]}
    # no place named: the given district is its place
    assert city.appeal("h6") == {"group_id": "g000003", "place": "A3区", "repeat": False, "repeat_of": []}
    assert city.group_of("h5") == "g000002"
    with pytest.raises(KeyError, match="'nope' has not been added"):
        city.group_of("nope")


@pytest.mark.parametrize("params, message", [
    ({"threshold": 0}, "threshold must be in (0, 1], got 0"),
    ({"place_threshold": 1.01}, "place_threshold must be in (0, 1], got 1.01"),
    ({"matter_threshold": -0.1}, "matter_threshold must be in (0, 1]"),
    ({"place_cosine": 2}, "place_cosine must be in (0, 1]"),
    ({"cosine": 0.0}, "cosine must be in (0, 1]"),
    ({"window_days": 0}, "window_days must be positive, got 0"),
    ({"place_window_days": -1}, "place_window_days must be positive, got -1"),
    ({"shingle_size": 0}, "shingle_size must be an integer ≥ 1, got 0"),
    ({"shingle_size": 2.0}, "shingle_size must be an integer ≥ 1, got 2.0"),
    ({"num_perm": 7}, "num_perm must be an integer ≥ 8, got 7"),
    ({"band_rows": 0}, "band_rows must be an integer ≥ 1"),
    ({"n_representatives": 0}, "n_representatives must be an integer ≥ 1"),
    ({"n_keywords": 0}, "n_keywords must be an integer ≥ 1"),
    ({"num_perm": 8, "band_rows": 9}, "band_rows must be at most num_perm (8), got 9"),
])
def test_bad_parameters_are_refused_naming_them(params, message):
    with pytest.raises(ValueError) as err:
        HotspotGrouper(**params).add("1", None, "路灯不亮")
    assert message in str(err.value)


def test_the_smallest_allowed_parameters_work():
    g = HotspotGrouper(threshold=1, place_threshold=1, matter_threshold=1, place_cosine=1, cosine=1,
                       window_days=0.5, place_window_days=0.5, shingle_size=np.int64(1), num_perm=8, band_rows=8,
                       n_representatives=1, n_keywords=1)
    assert g.add("1", "2024-01-01", "路灯不亮") == g.add("2", "2024-01-01", "路灯不亮！") == "g000001"
    assert g.add("3", "2024-01-01", "井盖丢了") == "g000002"


def test_a_bad_time_is_refused_redacted_and_a_missing_one_is_none():
    g = HotspotGrouper()
    with pytest.raises(ValueError) as err:
        g.add("1", "回电13812345678", "路灯不亮")
    assert str(err.value) == "time must be a date and time (ISO 8601 or a datetime), got '回电[手机号]'"
    with pytest.raises(ValueError, match="got 'x'"):
        g.add("1", object.__new__(type("X", (), {"__str__": lambda self: "x"})), "路灯不亮")
    for k, t in enumerate((None, float("nan"), pd.NaT, "")):
        g.add(f"n{k}", t, "路灯不亮")
    assert g.groups()[0]["first_time"] is None and g.groups()[0]["size"] == 4


def test_windows_are_inclusive_to_the_day():
    g = HotspotGrouper(window_days=10, place_window_days=10)
    a = g.add("1", "2024-01-11", WATER)
    assert g.add("2", "2024-01-01", WATER.replace("三天", "四天")) == a  # 10 days before the first: in
    assert g.add("3", "2024-01-21", WATER.replace("三天", "五天")) == a  # 10 days after the last: in
    assert g.add("4", "2024-01-31 00:00:01", WATER.replace("三天", "六天")) != a  # just past
    assert g.group(a)["appeal_ids"] == ["2", "1", "3"]  # in time order, not the order added


def test_without_a_place_the_shorter_window_holds():
    lamp = "楼道灯坏了一个月没人修，晚上上下楼很危险，物业一直推脱"
    g = HotspotGrouper(window_days=30, place_window_days=180)
    a = g.add("1", "2024-01-01", lamp)
    assert g.add("2", "2024-03-01", lamp.replace("一个月", "两个月")) != a
    assert g.add("3", "2024-01-20", lamp.replace("一个月", "三周")) == a


def test_seed_restores_groups_flags_and_keeps_grouping():
    g = HotspotGrouper()
    assert g.seed("s1", "2024-06-01", WATER, group="g000042", user="u1") == "g000001"
    assert g.seed("s2", "2024-06-02", STATION[0], group=7, user="u2") == "g000002"
    assert g.seed("s3", "2024-06-03", WATER + "！", group="g000042", user="u3", repeat=True,
                  repeat_of=[1]) == "g000001"
    assert g.appeal("s3") == {"group_id": "g000001", "place": "幸福里小区", "repeat": True, "repeat_of": ["1"]}
    assert g.appeal("s1")["repeat"] is False and g.appeal("s1")["repeat_of"] == []
    assert g.add("s4", "2024-06-04", STATION[1], user="u4") == "g000002"
    assert g.add("s5", "2024-06-05", WATER.replace("三天", "五天"), user="u5") == "g000001"
    assert g.group("g000001")["appeal_ids"] == ["s1", "s3", "s5"]
    with pytest.raises(ValueError, match="already added"):
        g.seed("s1", None, "路灯不亮", group="x")


def test_add_frame_without_ids_or_times_and_with_missing_ones():
    frame = pd.DataFrame({"text": ["幸福里小区停水三天了，水压很低", "阳光花园小区门口垃圾成堆没人清理",
                                   "幸福里小区停水三天了，水压很低！"],
                          "time": pd.to_datetime(["2024-06-02", None, "2024-06-01"])})
    g = HotspotGrouper()
    assert list(g.add_frame(frame, progress=False)) == ["g000001", "g000002", "g000001"]
    # time order, rows without a time last; without an id column the row position is the id
    assert g.group("g000001")["appeal_ids"] == ["2", "0"] and g.group_of(1) == "g000002"
    assert g.group("g000001")["first_time"] == "2024-06-01T00:00:00"
    zoned = frame.assign(time=frame["time"].dt.tz_localize("Asia/Shanghai"))
    z = HotspotGrouper()
    z.add_frame(zoned, progress=False)
    assert z.group("g000001")["first_time"] == "2024-05-31T16:00:00"  # stored in UTC
    plain = HotspotGrouper()
    assert list(plain.add_frame(frame[["text"]], progress=False)) == ["g000001", "g000002", "g000001"]
    assert plain.group("g000001")["appeal_ids"] == ["0", "2"]  # no times: row order


def test_summary_without_a_place_or_keywords():
    g = HotspotGrouper()
    g.add("1", "2024-06-01", "导游强制游客购物，不买就不让上车，旅行社态度恶劣", user="u1")
    g.add("2", "2024-06-02", "导游强制游客购物，不买就不让上车，旅行社态度恶劣！", user="u2")
    g.add("3", "2024-06-03", "123456", user="u3")
    g.add("4", "2024-06-04", "123456。", user="u4")
    rows = {r["appeal_ids"][0]: r for r in g.groups()}
    assert rows["1"]["place"] is None and rows["1"]["summary"] == "、".join(rows["1"]["keywords"])
    assert len(rows["1"]["keywords"]) == 3 and "导游" in rows["1"]["keywords"]
    assert rows["3"]["keywords"] == [] and rows["3"]["summary"] == "同类诉求"


def test_describe_uses_the_given_districts_idf_and_k():
    texts = ["路灯坏了晚上很黑", "路灯坏了好几天晚上看不见"]
    assert describe(texts)[0] is None
    assert describe(texts, districts=["A1区", "A1区"]) == ("A1区", describe(texts)[1])
    assert describe(texts, k=1) == (None, ["路灯"])
    # idf orders words held alike: the rarer one first
    rare = {"晚上": 5.0}
    assert describe(texts, k=1, idf=lambda w: rare.get(w, 1.0)) == (None, ["晚上"])


def test_times_are_reported_in_utc_whatever_the_local_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        g = HotspotGrouper()
        g.add("1", "2024-06-01 08:00", WATER)
        g.add("2", "2024-06-02T09:30:00+08:00", WATER + "！")
        r = g.groups()[0]
        assert (r["first_time"], r["last_time"]) == ("2024-06-01T08:00:00", "2024-06-02T01:30:00")
    finally:
        monkeypatch.undo()
        time.tzset()


def test_warm_up_and_the_shipped_cue_files_load():
    from models.hotspots import _lines, _warm_up

    _warm_up()
    cues = _lines("repeat_cues.txt")
    assert "多次反映" in cues and all(c and "#" not in c and c == c.strip() for c in cues)


def test_a_grouper_seeded_from_stored_groups_reads_and_continues_as_the_original(city):
    """seed: the appeals of CITY re-seeded under their stored group ids give the same groups
    (heat from likes, urgency, districts and senders included), and the appeals added after
    are grouped as the original groups them."""
    seeded = HotspotGrouper()
    for i, t, text, d, u, likes, urg in CITY:
        info = city.appeal(i)
        seeded.seed(i, t, text, group=info["group_id"], district=d, user=u, likes=likes, urgency=urg,
                    repeat=info["repeat"], repeat_of=info["repeat_of"])
    assert seeded.groups(min_size=1) == city.groups(min_size=1)
    later = [("h7", "2024-06-11 08:00", STREAM[2][2], "u7"), ("h8", "2024-06-12 08:00", STREAM[4][2], "u8"),
             ("h9", "2024-06-12 09:00", "幸福里小区停水，我前天反映过水压低的问题，物业说在修", "u2")]
    whole = HotspotGrouper()
    for i, t, text, d, u, likes, urg in CITY:
        whole.add(i, t, text, district=d, user=u, likes=likes, urgency=urg)
    for i, t, text, u in later:
        assert seeded.add(i, t, text, user=u) == whole.add(i, t, text, user=u)
        assert seeded.appeal(i) == whole.appeal(i)
    assert seeded.groups() == whole.groups()


def test_seeding_keeps_neighbours_from_chaining():
    """As add: a seeded appeal that matches the group's first appeal is a representative, one
    that matches only a representative is not, so a newcomer cannot chain through it."""
    s = ["垃圾站臭气熏天苍蝇蚊子特别多", "清运车凌晨四点作业噪音很大", "清运车还漏油路面又脏又滑",
         "电动车乱停乱放堵住消防通道", "楼道里堆满杂物存在火灾隐患", "健身器材损坏多年无人维修"]
    texts = ["，".join(s[k:k + 3]) for k in range(4)]
    added, seeded = HotspotGrouper(threshold=0.4), HotspotGrouper(threshold=0.4)
    for k, text in enumerate(texts[:3]):
        gid = added.add(f"c{k}", f"2024-07-0{k + 1}", text)
        seeded.seed(f"c{k}", f"2024-07-0{k + 1}", text, group=gid)
    assert seeded.add("d", "2024-07-05", texts[3]) == added.add("d", "2024-07-05", texts[3]) == "g000002"
    near_b = "，".join([s[1], s[2], s[3] + "了"])
    assert seeded.add("e", "2024-07-06", near_b) == added.add("e", "2024-07-06", near_b)


def test_a_sender_following_up_on_their_own_place_joins_however_late():
    g = HotspotGrouper(window_days=30, place_window_days=180)
    a = g.add("f1", "2024-01-01", WATER, user="u1")
    later = "再次反映幸福里小区停水的问题：水压仍然很低，老人孩子生活不便，为什么一直不处理"
    assert g.add("f2", "2025-03-01", later, user="u1") == a  # 425 days on, the same sender and 小区
    # the same sender about their place but another matter stays apart
    assert g.add("f3", "2025-03-03", "幸福里小区门口夜宵摊油烟大，烧烤到凌晨，吵得睡不着", user="u1") != a
    g = HotspotGrouper(window_days=30, place_window_days=180)
    a = g.add("f1", "2024-01-01", WATER, user="u1")
    assert g.add("f4", "2025-03-01", later, user="u9") != a  # someone else that late: beyond both windows


def test_a_text_naming_a_groups_place_without_its_suffix_shares_the_place():
    g = HotspotGrouper(window_days=30, place_window_days=180)
    first = "魅力之城小区底层商铺没有排烟管道，餐馆油烟排进小区，业主一身油烟味"
    a = g.add("m1", "2024-01-01", first, user="u1")
    # 90 days on (beyond the 30-day window), written with the developer's name and no 小区
    assert g.add("m2", "2024-03-31", "万科魅力之城底层商铺无排烟管道，餐馆油烟味到处都是，物业不管", user="u2") == a
    # the same words naming no place of the group's do not reach back that far
    g = HotspotGrouper(window_days=30, place_window_days=180)
    a = g.add("m1", "2024-01-01", first, user="u1")
    assert g.add("m3", "2024-03-31", "底层商铺无排烟管道，餐馆油烟味到处都是，物业不管", user="u3") != a
