"""models/tagger.py: one tag per appeal from a bundle's models and the routing table."""
from datetime import datetime, timedelta

import numpy as np
import pytest

from corpora.rules import RoutingRule, Router
from models.registry import Bundle
from models.tagger import Tagger, tag_in_processes

TEXTS = ["北山区梧桐郡暖气不热已经三天了，家里有婴儿", "请问社保怎么转移", "导游强制购物，不买不让走",
         "工地夜间施工噪音扰民", "小区门口垃圾站臭味很大"]


def test_a_bundle_without_a_category_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="has no category model"):
        Tagger(Bundle(tmp_path, {"version": "x"}, {"urgency": object()}))


def test_no_texts_no_tags(demo_bundle):
    assert Tagger(demo_bundle).tag([]) == []


def test_scores_ranking_and_review_come_from_the_category_model(demo_bundle):
    clf = demo_bundle.models["category"]
    tags = Tagger(demo_bundle, top_k=2).tag(TEXTS)
    proba = clf.predict_proba(TEXTS)
    review = clf.needs_review(proba)
    assert len(tags) == len(TEXTS)
    for t, p, r in zip(tags, proba, review):
        order = [str(clf.classes_[j]) for j in np.argsort(-p)]
        assert t["category"] == order[0] and t["top_categories"] == order[:2]
        assert t["confidence"] == round(float(p.max()), 4)
        assert t["category_scores"] == {str(c): round(float(x), 4) for c, x in zip(clf.classes_, p)}
        assert t["needs_review"] is bool(r)
        assert t["model_version"] == demo_bundle.version == demo_bundle.manifest["version"]
    assert len(Tagger(demo_bundle).tag(TEXTS[:1])[0]["top_categories"]) == 3  # default top_k


def test_routing_uses_the_router_given(demo_bundle):
    category = Tagger(demo_bundle).tag(TEXTS[:1])[0]["category"]
    import re

    router = Router([RoutingRule(category, None, "默认部门", None),
                     RoutingRule(category, "婴儿", "妇幼部门", re.compile("婴儿"))])
    t = Tagger(demo_bundle, router).tag(TEXTS[:1])[0]
    assert (t["department"], t["topic"]) == ("妇幼部门", "婴儿")


def test_urgency_fields_are_added_only_with_an_urgency_model(demo_bundle):
    full = Tagger(demo_bundle).tag(TEXTS[:1], received_at=["2025-12-01T08:00:00"])[0]
    assert {"urgency", "urgency_cues", "deadlines"} <= set(full)
    only = Bundle(demo_bundle.path, demo_bundle.manifest, {"category": demo_bundle.models["category"]})
    bare = Tagger(only).tag(TEXTS[:1])[0]
    assert not {"urgency", "urgency_cues", "deadlines"} & set(bare)
    assert {k: full[k] for k in bare} == bare


def test_tagging_in_processes_equals_tagging_in_order(demo_bundle):
    expected = Tagger(demo_bundle).tag(TEXTS, received_at=["2025-12-01T08:00:00"] * len(TEXTS))
    chunks, ready = [], []
    got = tag_in_processes(demo_bundle.path, TEXTS, ["2025-12-01T08:00:00"] * len(TEXTS), n_jobs=1,
                           chunk_size=2, on_chunk=chunks.append, on_ready=lambda: ready.append(len(chunks)))
    assert got == expected
    assert chunks == [2, 2, 1] and ready == [0]
    assert tag_in_processes(demo_bundle.path, TEXTS[:2], n_jobs=1) == Tagger(demo_bundle).tag(TEXTS[:2])


def test_categories_an_admin_added_route_to_their_department(demo_bundle):
    added = Bundle(demo_bundle.path, {**demo_bundle.manifest, "categories_added": {"城市更新": "市城市更新局"}},
                   demo_bundle.models)
    assert Tagger(added).router.route("城市更新", "老旧小区改造进度") == ("市城市更新局", None)
    assert "城市更新" not in Tagger(demo_bundle).router.categories


def test_deadlines_follow_the_serving_citys_rules(demo_bundle, tmp_path, monkeypatch):
    import models.urgency as mu

    rules = (mu.DATA_DIR / "sla.csv").read_text(encoding="utf-8")
    (tmp_path / "sla.csv").write_text(rules + "慢城,urgent,5,100,48,a city of its own\n"
                                      "慢城,critical,2,30,30,\n慢城,routine,48,480,48,\n", encoding="utf-8")
    monkeypatch.setattr(mu.load_sla, "__defaults__", (tmp_path / "sla.csv",))
    at = ["2025-12-01T08:00:00"] * len(TEXTS)
    default = Tagger(demo_bundle).tag(TEXTS, received_at=at)
    city = Tagger(demo_bundle, city="慢城").tag(TEXTS, received_at=at)
    hours = {"critical": 2, "urgent": 5, "routine": 48}
    for d, c in zip(default, city):
        assert c["urgency"] == d["urgency"] and d["deadlines"]["city"] == "default"
        assert c["deadlines"]["city"] == "慢城" and c["deadlines"]["contact_within_hours"] == hours[c["urgency"]]
        assert c["deadlines"]["contact_by"] == (datetime(2025, 12, 1, 8) + timedelta(hours=hours[c["urgency"]])).isoformat()


def test_a_worker_loads_the_bundle_with_the_citys_rules_and_tags_its_chunk(demo_bundle, monkeypatch):
    """What each process of tag_in_processes runs, here in this process."""
    import models.tagger as mt

    monkeypatch.setattr(mt, "_WORKER", None)
    at = ["2025-12-01T08:00:00"] * 2
    mt._init_worker(str(demo_bundle.path), "default")
    assert mt._WORKER.version == demo_bundle.version and mt._WORKER.sla.city == "default"
    assert mt._tag_chunk((TEXTS[:2], at)) == Tagger(demo_bundle, city="default").tag(TEXTS[:2], received_at=at)
    assert mt._tag_chunk((TEXTS[:2], at)) != mt._tag_chunk((TEXTS[2:4], at))
