"""Near-duplicate groups: the containment half of the relation (corpora/dedup.py)."""
from corpora.dedup import near_duplicate_groups

SHORT = "小区门口的垃圾站三天没人清运，臭味很大，苍蝇到处飞"
LONG = ("我是幸福里小区的居民，想反映一个困扰大家很久的问题。" * 3
        + SHORT
        + "。我们已经多次打电话给物业和街道，答复都是马上处理，但一直没有下文。"
          "天气越来越热，老人和孩子都受不了，附近的商户也受到影响。"
          "希望有关部门尽快督促清运，并建立定期清运的制度，谢谢。" * 4)
OTHERS = ["导游带我们去玉器店强制购物，不买就不让上车，请旅游部门查处这种行为",
          "工地夜间施工噪音太大，每天晚上十二点还在打桩，附近居民无法休息",
          "公司拖欠工资三个月，老板联系不上，请劳动监察帮忙讨薪，谢谢"]


def test_text_contained_in_a_long_appeal_shares_its_group():
    # The long appeal dilutes the short one's trigrams: the cosine alone is far below 0.6.
    g = near_duplicate_groups([SHORT, LONG] + OTHERS)
    assert g[0] == g[1]
    assert len(set(g.tolist())) == 1 + len(OTHERS)


def test_containment_ignores_whitespace_and_punctuation():
    reposted = "标题：垃圾站没人清运\n" + LONG.replace(SHORT, "小区门口的 垃圾站三天没人清运!臭味很大;苍蝇到处飞")
    g = near_duplicate_groups([SHORT, reposted] + OTHERS)
    assert g[0] == g[1]


def test_unrelated_texts_stay_apart():
    g = near_duplicate_groups(OTHERS + [LONG])
    assert len(set(g.tolist())) == len(OTHERS) + 1


def test_short_texts_do_not_chain_long_ones_together():
    short = "垃圾没人清运"  # contained in every long text below, but too short to count
    longs = [f"{short}，{o}，{o[::-1]}，{o}" for o in OTHERS]
    g = near_duplicate_groups([short] + longs)
    assert len(set(g.tolist())) == 1 + len(OTHERS)
