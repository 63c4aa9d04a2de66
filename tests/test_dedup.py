"""Near-duplicate groups: the containment half of the relation (corpora/dedup.py)."""
import pytest

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


# --- the whole relation against a brute-force reference --------------------------------

def _reference_groups(texts, threshold=0.6, min_contained=20):
    """Connected components of the documented relation, computed over every pair: cosine of
    sublinear character-3-gram TF-IDF >= threshold, or a stripped text of >= min_contained
    characters inside another."""
    import re

    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(texts)
    X = TfidfVectorizer(analyzer="char", ngram_range=(3, 3), sublinear_tf=True).fit_transform(texts)
    sims = (X @ X.T).toarray()
    stripped = [re.sub(r"[\W_]+", "", t.lower()) for t in texts]
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            a, b = stripped[i], stripped[j]
            contained = (len(a) >= min_contained and a in b) or (len(b) >= min_contained and b in a)
            if sims[i, j] >= threshold or contained:
                parent[find(i)] = find(j)
    roots = [find(i) for i in range(n)]
    first = {}
    return np.array([first.setdefault(r, len(first)) for r in roots])


def _mixed_corpus(demo_frame):
    """The shipped corpus (re-posts, title variants) plus containments placed at every kind
    of position: a contained text after other long texts, one whose rarest 3-gram is shared
    with texts that do not contain it, and one behind a short text."""
    texts = demo_frame["text"].astype(str).tolist()[:300]
    filler = "；".join(OTHERS)
    return (texts[:40] + [LONG] + texts[40:120] + [SHORT]
            + ["垃圾" + OTHERS[0] + "清运" + OTHERS[1], "短文本", OTHERS[0][::-1] + OTHERS[2]]
            + [OTHERS[0][3:28], filler + "，另外" + OTHERS[0][3:28] + "。", "苍蝇"]
            + texts[120:])


def test_groups_equal_the_brute_force_relation(demo_frame):
    texts = _mixed_corpus(demo_frame)
    ref = _reference_groups(texts)
    assert len(set(ref.tolist())) < len(texts) - 20  # the corpus has plenty of near-duplicates
    assert near_duplicate_groups(texts).tolist() == ref.tolist()


def test_comparing_in_blocks_finds_the_same_groups(demo_frame):
    texts = _mixed_corpus(demo_frame)
    assert near_duplicate_groups(texts, block_size=7).tolist() == _reference_groups(texts).tolist()


def test_a_contained_text_later_in_the_list_joins_its_container():
    # Containment found whatever the order: container first, contained after other long texts.
    contained = OTHERS[1][2:26]
    texts = [SHORT + "，" + OTHERS[1], "短", OTHERS[2], LONG, contained]
    g = near_duplicate_groups(texts)
    assert g[4] == g[0] and len(set(g.tolist())) == 4


def test_a_shared_rare_3gram_alone_does_not_group():
    # Both long texts hold 幸福里's 3-grams, but neither contains the other.
    a = "幸福里小区门口的垃圾站三天没人清运，臭味很大"
    b = "幸福里菜市场的摊贩占道经营，早上堵得车都过不去"
    assert near_duplicate_groups([a, b] + OTHERS).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("size, grouped", [(20, True), (19, False)])
def test_containment_needs_min_contained_characters(size, grouped):
    core = "幸福里小区门口垃圾站三天没人清运臭味很大苍蝇到处飞"[:size]
    text = "，".join(core[k:k + 5] for k in range(0, size, 5))  # punctuation does not count
    container = ("我想反映一个问题。" * 3 + core + "。希望有关部门尽快处理，并建立长效机制，谢谢。" * 3)
    g = near_duplicate_groups([text, container, "短文本"])
    assert bool(g[0] == g[1]) is grouped
    assert g[2] not in (g[0], g[1])


def test_the_same_text_with_spacing_is_contained_in_itself():
    # Re-posted with a space between every character: no 3-gram in common, same stripped text.
    a = OTHERS[0]
    assert near_duplicate_groups([a, " ".join(a), OTHERS[1]]).tolist() == [0, 0, 1]


def test_similarity_exactly_at_the_threshold_groups():
    # Texts of one 3-gram: identical vectors, cosine exactly 1.0.
    assert near_duplicate_groups(["abc", "abc", "abd"], threshold=1.0).tolist() == [0, 0, 1]


def test_empty_and_single_inputs():
    import numpy as np

    empty, one = near_duplicate_groups([]), near_duplicate_groups(["小区暖气不热"])
    assert empty.shape == (0,) and one.tolist() == [0]
    assert np.issubdtype(empty.dtype, np.integer) and np.issubdtype(one.dtype, np.integer)


def test_texts_with_a_lone_surrogate_are_grouped_not_refused():
    body = "小区门口的垃圾站三天没人清运\ud800臭味很大苍蝇到处飞"
    g = near_duplicate_groups([body, "我想反映：" + body + "。谢谢" * 10, OTHERS[0]])
    assert g.tolist() == [0, 0, 1]


def test_a_phrase_repeated_many_times_does_not_swamp_the_comparison():
    # Sublinear tf: with raw counts the four repeats would pull the cosine to about 0.66.
    phrase = "垃圾站三天没人清运"
    a = (phrase + "！") * 4 + "我家住在幸福里小区三号楼，楼下就是垃圾站，夏天味道特别大，窗户"
    g = near_duplicate_groups([a, phrase + "。", "导游强制购物不买不让走", "工地夜间施工噪音扰民"])
    assert g.tolist() == [0, 1, 2, 3]


def test_a_contained_text_whose_rarest_3gram_sorts_last():
    # 龥 (U+9FA5) sorts after every other character here, so 龥龥龥 - in the contained text and
    # its container only - is both its rarest 3-gram and the last of all: the edge of the postings.
    prefix = "幸福里小区门口的垃圾站三天没人清运臭味很大"
    contained, shorter = prefix + "龥龥龥", prefix + "龥龥"
    texts = ["我想反映：" + contained + "。谢谢", contained, shorter, OTHERS[0]]
    assert near_duplicate_groups(texts).tolist() == _reference_groups(texts).tolist() == [0, 0, 0, 1]


# --- containment candidates (corpora.dedup._containment_pairs) ----------------------------

class _CountedStr(str):
    """A stripped text that counts the substring tests made against it."""
    tests = 0

    def __contains__(self, other):
        _CountedStr.tests += 1
        return str.__contains__(self, other)


def test_only_texts_holding_the_rarest_3gram_are_tested_for_containment():
    # Texts drawn from the same three characters: every character, 2-gram and gapped pair
    # occurs in several of them, but each holds a 3-gram no other text has. So no text can
    # be contained in another, and none needs a substring test - except the first against
    # the one text that holds its own 3-grams, which contains it.
    import random

    from corpora.dedup import _containment_pairs

    rng = random.Random(2)
    texts = ["".join(rng.choice("暖气热") for _ in range(24)) for _ in range(4)]

    def of_others(i, n, gap=0):  # the n-grams (with a gap: first and last character) of the other texts
        return {t[k:k + n + gap:1 + gap] for t in texts[:i] + texts[i + 1:] for k in range(len(t) - n - gap + 1)}

    for i, t in enumerate(texts):
        assert {t[k:k + 3] for k in range(len(t) - 2)} - of_others(i, 3)  # a 3-gram of its own
        assert {t[k:k + 2] for k in range(len(t) - 1)} <= of_others(i, 2)  # 2-grams all shared
        assert {t[k] + t[k + 2] for k in range(len(t) - 2)} <= of_others(i, 2, gap=1)  # gapped pairs too
    container = "冷" + texts[0] + "冷"
    _CountedStr.tests = 0
    r, c = _containment_pairs([_CountedStr(t) for t in texts + [container]], 20)
    assert list(zip(r.tolist(), c.tolist())) == [(4, 0)]
    assert _CountedStr.tests == 1


def test_no_containment_pairs_without_two_long_enough_texts():
    from corpora.dedup import _containment_pairs

    for stripped in ([], ["小区暖气不热" * 4], ["小区暖气不热" * 4, "暖气不热"]):
        r, c = _containment_pairs(stripped, 20)
        assert r.tolist() == [] and c.tolist() == []


def test_a_text_of_one_repeated_character_is_contained_like_any_other():
    # Its only 3-gram is its rarest; after another text in the list it still finds its container.
    repeated = "啊" * 24
    texts = [OTHERS[0], repeated, LONG + repeated + "。", OTHERS[1]]
    assert near_duplicate_groups(texts).tolist() == _reference_groups(texts).tolist() == [0, 1, 1, 2]


def test_a_container_quoting_a_text_twice_is_tested_and_paired_once():
    from corpora.dedup import _containment_pairs

    short = "小区门口的垃圾站三天没人清运臭味很大苍蝇到处飞"
    stripped = [_CountedStr(t) for t in
                (short, "我想反映" + short + "已经一周了" + short + "请尽快处理", "导游带我们去玉器店强制购物不买就不让上车")]
    _CountedStr.tests = 0
    r, c = _containment_pairs(stripped, 20)
    assert list(zip(r.tolist(), c.tolist())) == [(1, 0)]
    assert _CountedStr.tests == 1
