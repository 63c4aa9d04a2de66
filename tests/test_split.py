import numpy as np
import pytest

from training.split import grouped_folds, near_duplicate_groups

BASE = ["小区暖气不热，家里只有十三度，老人孩子都冻病了，请供热公司尽快处理",
        "导游带我们去玉器店强制购物，不买就不让上车，请旅游部门查处",
        "工地夜间施工噪音太大，每天晚上十二点还在打桩，附近居民无法休息",
        "公司拖欠工资三个月，老板联系不上，请劳动监察帮忙讨薪",
        "孩子入学划片不合理，离家近的学校说学位已满，要去很远的学校"]


def test_reposts_and_title_variants_share_a_group():
    texts = BASE + ["暖气不热。" + BASE[0],                 # same appeal with its title
                    BASE[1].replace("玉器店", "玉石店"),     # re-post with a small edit
                    BASE[2] + "！！"]
    g = near_duplicate_groups(texts)
    assert g[5] == g[0] and g[6] == g[1] and g[7] == g[2]
    assert len(set(g[:5])) == 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_group_crosses_a_split(seed):
    rng = np.random.default_rng(seed)
    texts, y = [], []
    for i in range(60):
        base = BASE[i % 5] + f"（第{i}号反映，编号{rng.integers(1e6)}）" * 3
        texts.append(base)
        y.append(i % 5)
        if i % 3 == 0:
            texts.append("标题。" + base)
            y.append(i % 5)
    groups = near_duplicate_groups(texts)
    assert len(set(groups)) < len(texts)  # the copies were grouped
    for tr, te in grouped_folds(np.array(y), groups, n_splits=5, random_state=seed):
        assert not set(groups[tr]) & set(groups[te])
