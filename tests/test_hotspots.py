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
    g, gid = grouped
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

    frame, _ = simulate_stream(start="2024-05-01", end="2024-06-10", city=CityConfig(base_per_day=40, senders=True),
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
