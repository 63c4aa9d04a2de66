"""Rules as data: the routing table and the regex prefilter behind it."""
import pytest

from corpora.rules import default_router
from corpora.text import is_negated, normalise


def _route_every_rule(router, category, text):
    """Router.route as it ran before the prefilter: every topic rule's regex over the text."""
    best, best_hits = None, 0
    for rule in router.topics:
        if rule.category == category:
            hits = sum(1 for m in rule.pattern.finditer(text) if not is_negated(text, m.start()))
            if hits > best_hits:
                best, best_hits = rule, hits
    return (best.department, best.topic) if best else (router.default.get(category), None)


@pytest.mark.parametrize("source", ["demo", "tipdm"])
def test_routing_with_the_prefilter_equals_every_rule(source, demo_frame):
    from corpora.records import appeal_texts, read_appeals
    from tests.conftest import TIPDM, need

    frame = demo_frame if source == "demo" else read_appeals(need(TIPDM)).frame
    router = default_router()
    texts = [normalise(t) for t in appeal_texts(frame)]
    routed = [(c, t) for t in texts for c in router.categories]
    assert [router.route(c, t) for c, t in routed] == [_route_every_rule(router, c, t) for c, t in routed]
    assert sum(router.route(c, t)[1] is not None for c, t in routed) > len(texts) // 10  # topics did fire
