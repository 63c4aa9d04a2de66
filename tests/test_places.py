"""Place extraction (corpora/places.py): names and spans found, the most specific place,
gazetteers (given and loaded from a file) and custom rule files. Texts are written for
these tests."""
from __future__ import annotations

import pytest

from corpora.places import (
    LEVELS,
    Gazetteer,
    Place,
    find_places,
    load_gazetteer,
    place_key,
)
from corpora.rules import RuleFileError
from corpora.text import DATA_DIR


def _named(match):
    return [(p.name, p.kind) for p in match.places]


# --- what a text names ----------------------------------------------------------------------
def test_every_place_is_found_with_its_span_in_text_order():
    text = "投诉A市A3区洋湖街道幸福里小区停水三天"
    m = find_places(text)
    assert m.places == [Place("A市", "city", 0, 2, 4), Place("A3区", "district", 1, 4, 7),
                        Place("洋湖街道", "township", 2, 7, 11), Place("幸福里小区", "place", 4, 11, 16)]
    assert all(text[p.start:p.end] == p.name for p in m.places)
    assert m.best == m.places[-1] and m.district == "A3区"


def test_a_coarser_place_at_the_same_start_comes_after_the_finer_one():
    m = find_places("中山路小区停水")
    assert m.places == [Place("中山路小区", "place", 4, 0, 5), Place("中山路", "road", 3, 0, 3)]
    assert m.best.name == "中山路小区"


def test_text_is_normalised_unless_the_caller_says_it_already_is():
    assert find_places("幸福裡小區停水").best.name == "幸福里小区"  # traditional characters
    assert find_places("幸福裡小區停水", normalised=True).best is None  # taken as given: 小區 is no suffix


def test_leading_admin_units_are_cut_when_a_name_and_suffix_remain():
    # 丽发村: exactly three characters after A2区 is still enough to cut there
    assert _named(find_places("A2区丽发村路面坏了")) == [("A2区", "district"), ("丽发村", "place")]
    assert find_places("A市A2区暮云街道丽发新城停电").best.name == "丽发新城"


def test_a_leading_prefix_word_is_cut_when_two_characters_remain():
    m = find_places("投诉中路积水")
    assert m.places == [Place("中路", "road", 3, 2, 4)]
    assert find_places("投诉解放路积水").best.name == "解放路"


@pytest.mark.parametrize("text", [
    "老旧小区停水",  # the stem before the suffix is generic
    "商品房小区没有电梯",
    "农业银行乱收费",  # the whole name is generic
    "物业公司不作为",
])
def test_generic_names_are_not_places(text):
    m = find_places(text)
    assert m.best is None and m.places == [] and m.district is None


def test_a_generic_name_does_not_hide_a_later_real_one():
    m = find_places("老旧小区和幸福里小区都停水")
    assert m.places == [Place("幸福里小区", "place", 4, 5, 10)]


# --- the most specific place ------------------------------------------------------------------
def test_best_is_the_place_named_most_often_spellings_joined():
    m = find_places("幸福里小区和阳光花园小区，阳光花园社区也停水")
    assert [p.name for p in m.places] == ["幸福里小区", "阳光花园小区", "阳光花园社区"]
    assert m.best == Place("阳光花园小区", "place", 4, 6, 12)  # named twice (小区 / 社区), the first spelling


def test_best_among_places_named_as_often_is_the_first():
    assert find_places("幸福里小区和阳光花园小区都停水").best == Place("幸福里小区", "place", 4, 0, 5)
    # only the most specific level counts: two roads do not beat one 小区
    m = find_places("中山路和人民路，人民路边的幸福里小区")
    assert m.best.name == "幸福里小区"
    assert find_places("中山路和人民路，人民路积水").best.name == "人民路"


def test_a_given_district_is_the_district_and_the_fallback_place():
    m = find_places("楼道灯坏了没人修", district=" Ａ1区 ")
    assert m.best == Place("A1区", "district", LEVELS["district"], -1, -1) and m.district == "A1区"
    m = find_places("芙蓉区东湖街道路灯不亮", district="A2区")
    assert m.best.name == "东湖街道" and m.district == "A2区"  # the given district wins over the named one
    assert find_places("芙蓉区东湖街道路灯不亮").district == "芙蓉区"
    empty = find_places("楼道灯坏了没人修", district="")
    assert empty.best is None and empty.district is None


def test_place_key_joins_xiaoqu_and_shequ_but_keeps_short_names():
    assert place_key("阳光花园小区") == place_key("阳光花园社区") == place_key("阳光花园") == "阳光花园"
    assert place_key("小区") == "小区" and place_key("A社区") == "A社区"  # nothing would be left
    assert place_key("") is None and place_key(None) is None


# --- gazetteers -------------------------------------------------------------------------------
def test_gazetteer_finds_names_verbatim_with_kind_level_and_span():
    g = Gazetteer({"五矿万境": "", "暮云街道": "township"})
    assert g.names == {"五矿万境": "place", "暮云街道": "township"}  # no kind: a named place
    assert g.find("暮云街道五矿万境物业") == [Place("暮云街道", "township", 2, 0, 4),
                                               Place("五矿万境", "place", 4, 4, 8)]


def test_gazetteer_prefers_the_longest_name_and_drops_one_character_names():
    g = Gazetteer({"阳光花园": "place", "阳光花园二期": "place", "村": "place", "Ｂ栋": "place"})
    assert set(g.names) == {"阳光花园", "阳光花园二期", "B栋"}  # names normalised; 村 alone is too short
    assert [p.name for p in g.find("阳光花园二期和阳光花园都停水")] == ["阳光花园二期", "阳光花园"]


def test_an_empty_gazetteer_finds_nothing():
    for g in (Gazetteer({}), Gazetteer({"村": "place"})):
        assert g.pattern is None and g.find("幸福里小区停水") == []
        assert find_places("幸福里小区停水", gazetteer=g).best.name == "幸福里小区"


def test_gazetteer_refuses_an_unknown_kind():
    with pytest.raises(ValueError) as err:
        Gazetteer({"湘江": "river"})
    assert str(err.value) == ("gazetteer kind for '湘江' must be one of "
                              "['city', 'district', 'place', 'road', 'township'], got 'river'")


def test_a_gazetteer_name_replaces_the_pattern_match_of_its_span():
    g = Gazetteer({"幸福里小区": "place"})
    m = find_places("投诉幸福里小区停水，幸福里小区和阳光花园小区", gazetteer=g)
    assert m.places == [Place("幸福里小区", "place", 4, 2, 7), Place("幸福里小区", "place", 4, 10, 15),
                        Place("阳光花园小区", "place", 4, 16, 22)]


def test_a_gazetteer_name_hides_no_other_place():
    g = Gazetteer({"五矿万境": "place"})
    m = find_places("五矿万境和解放路都积水", gazetteer=g)
    assert _named(m) == [("五矿万境", "place"), ("解放路", "road")]
    # a coarser gazetteer name over a finer match does not hide it
    g = Gazetteer({"幸福里小区": "road"})
    assert _named(find_places("幸福里小区停水", gazetteer=g)) == [("幸福里小区", "place"), ("幸福里小区", "road")]


def test_load_gazetteer_from_csv(tmp_path):
    path = tmp_path / "names.CSV"
    path.write_text("\ufeffname,kind\n五矿万境,\n暮云街道, township \n,place\n万科魅力之城,place\n", encoding="utf-8")
    g = load_gazetteer(str(path))
    assert g.names == {"五矿万境": "place", "暮云街道": "township", "万科魅力之城": "place"}
    assert find_places("暮云街道五矿万境停电", gazetteer=g).best == Place("五矿万境", "place", 4, 4, 8)


def test_load_gazetteer_csv_without_kind_column_or_rows(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("name\n五矿万境\n", encoding="utf-8")
    assert load_gazetteer(one).names == {"五矿万境": "place"}
    header = tmp_path / "header.csv"
    header.write_text("name,kind\n", encoding="utf-8")
    assert load_gazetteer(header).names == {}


def test_load_gazetteer_from_a_text_file(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("# A市的小区\n五矿万境\n\n  万科魅力之城  \n#暮云街道\n", encoding="utf-8")
    assert load_gazetteer(path).names == {"五矿万境": "place", "万科魅力之城": "place"}


def test_load_gazetteer_refuses_a_missing_file_and_a_csv_without_names(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.csv: no such gazetteer file"):
        load_gazetteer(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("place,kind\n五矿万境,place\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.csv: a gazetteer CSV needs a 'name' column"):
        load_gazetteer(bad)


# --- rule files -------------------------------------------------------------------------------
_SHIPPED = (DATA_DIR / "place_patterns.csv").read_text(encoding="utf-8").splitlines()


def _rules_file(tmp_path, keep, name="rules.csv"):
    path = tmp_path / name
    path.write_text("\n".join(line for line in _SHIPPED if line.split(",", 1)[0] in keep) + "\n", encoding="utf-8")
    return path


def test_a_custom_rules_file_is_used(tmp_path):
    path = _rules_file(tmp_path, {"kind", "boundary", "prefix", "generic", "road"})
    text = "幸福里小区和解放路都积水"
    assert _named(find_places(text, rules_path=str(path))) == [("解放路", "road")]
    assert find_places(text).best.name == "幸福里小区"


def test_a_bad_rules_file_is_refused_with_its_line(tmp_path):
    path = _rules_file(tmp_path, {"kind", "boundary", "prefix", "generic"}, "bad.csv")
    path.write_text(path.read_text(encoding="utf-8") + "river,5,(?P<s>江)\n", encoding="utf-8")
    with pytest.raises(RuleFileError, match=r"bad\.csv:5: unknown kind 'river'"):
        find_places("湘江", rules_path=path)
    path = _rules_file(tmp_path, {"kind", "boundary", "prefix"}, "nogeneric.csv")
    with pytest.raises(RuleFileError, match="needs exactly one 'generic' row"):
        find_places("湘江", rules_path=path)


def test_a_housing_estate_is_named_without_the_road_it_begins_with():
    # the same estate, written with its road, its developer or neither, has one place key
    named = [find_places(t).best.name for t in ("劳动东路魅力之城小区油烟扰民", "万科魅力之城小区底层商铺噪音",
                                                 "魅力之城小区临街门面油烟直排")]
    assert named == ["魅力之城小区", "万科魅力之城小区", "魅力之城小区"]
    assert [p.name for p in find_places("芙蓉中路阳光花园小区停水").places] == ["芙蓉中路", "阳光花园小区"]
    # schools and hospitals named after their road keep it; so does a name left too short or generic
    for text, name in (("中山路小学门口拥堵", "中山路小学"), ("解放西路第一中学门口", "解放西路第一中学"),
                       ("人民路社区停电", "人民路社区"), ("五一路口小区停水", "五一路口小区"), ("中山路花园小区", "中山路花园小区")):
        assert find_places(text).best.name == name
    assert all(p.kind != "road" for p in find_places("魅力之城小区临街门面沿街摆摊").places)  # 临街 / 沿街 name no road


def test_citizen_is_not_a_city_before_a_place():
    assert find_places("市民反映王家村道路坑洼").best.name == "王家村"


@pytest.mark.parametrize("text, names", [
    ("经营餐馆导致大量油烟排入小区大堂门口", []),  # a verb before 小区: no name, and a bare 小区 is none
    ("创发城存在不符合小区规划的乱建", []),
    ("独生子女家庭增加一人份额", []),  # 家庭 is a family, not an estate ending in 庭
    ("请恢复生活广场原貌", ["生活广场"]),
    ("2015年西湖文化公园开园", ["西湖文化公园"]),  # a date is not part of a name
    ("凯旋门配套幼儿园收费太高", []),
    ("考虑周边学校的安全", []),
    ("四家公司都不管", []),  # a count of firms, not a firm
    ("绝大部分小区没有电梯", []),
    ("附近只有一所公立幼儿园", []),
    ("没有普惠性幼儿园", []),
    ("所以小区门口很堵", []),
    ("家家乐超市门口很堵", ["家家乐超市"]),  # 家 inside a name is no count
])
def test_a_name_begins_after_the_last_breaker_word(text, names):
    assert [p.name for p in find_places(text).places] == names


def test_the_breaker_row_is_optional_and_at_most_one(tmp_path):
    path = _rules_file(tmp_path, {"kind", "boundary", "prefix", "generic", "place"})
    assert find_places("油烟排入幸福里小区", rules_path=path).best.name == "油烟排入幸福里小区"
    assert find_places("油烟排入幸福里小区").best.name == "幸福里小区"
    path = _rules_file(tmp_path, {"kind", "boundary", "prefix", "generic", "breaker", "place"}, "two.csv")
    path.write_text(path.read_text(encoding="utf-8") + "breaker,,导致\n", encoding="utf-8")
    with pytest.raises(RuleFileError, match="at most one 'breaker' row"):
        find_places("幸福里小区", rules_path=path)


def test_a_breaker_word_never_cuts_into_the_suffix(tmp_path):
    # a rules file whose breakers include a suffix: the name before the suffix is cut, never the suffix
    path = _rules_file(tmp_path, {"kind", "boundary", "prefix", "generic", "place"})
    path.write_text(path.read_text(encoding="utf-8") + "breaker,,小区|排入\n", encoding="utf-8")
    assert [p.name for p in find_places("幸福里小区停水", rules_path=path).places] == ["幸福里小区"]
    assert [p.name for p in find_places("油烟排入幸福里小区", rules_path=path).places] == ["幸福里小区"]
