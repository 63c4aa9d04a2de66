"""corpora/build_demo_corpus.py: the shipped demo corpus is what the script writes, and what
it writes keeps its promises (seasons, unique texts, gold labels from the templates)."""
from __future__ import annotations

import random
from datetime import datetime

import pandas as pd
import pytest

from corpora import build_demo_corpus as demo

COLUMNS = ["id", "time", "title", "text", "district", "channel", "category", "urgency"]


def test_the_script_writes_the_shipped_corpus_byte_for_byte(tmp_path, monkeypatch):
    """`python -m corpora.build_demo_corpus` regenerates corpora/data/demo_appeals.csv exactly."""
    shipped = demo.OUT.read_bytes()
    monkeypatch.setattr(demo, "OUT", tmp_path / "data" / "demo_appeals.csv")
    demo.main()
    assert demo.OUT.read_bytes() == shipped


def test_rows_follow_their_templates():
    """Each row comes from one template: its labels, a month the template allows, unique text."""
    rows = pd.DataFrame(demo.build())
    assert list(rows.columns) == ["title", "text", "district", "time", "channel", "category", "urgency", "id"]
    assert len(rows) == len(demo.T) * 12 and rows["text"].is_unique
    assert rows["id"].tolist() == [f"DEMO-{i:05d}" for i in range(1, len(rows) + 1)]
    assert rows["time"].is_monotonic_increasing
    times = pd.to_datetime(rows["time"], format="%Y-%m-%d %H:%M:%S")
    assert times.min() >= datetime(2024, 1, 1, 7) and times.max() < datetime(2026, 1, 1)
    assert ((times.dt.hour >= 7) & (times.dt.hour < 23)).all()
    assert set(rows["district"]) == set(demo.DISTRICTS)
    assert set(rows["channel"]) == {"12345热线", "市长信箱", "留言板", "微信公众号"}
    for category, urgency, months, title_t, body_t in demo.T:
        body_start = body_t.split("{")[0]
        mine = rows[(rows["category"] == category) & (rows["urgency"] == urgency)
                    & rows["text"].str.contains(body_start, regex=False)
                    & rows["title"].str.fullmatch(title_t.format(d=".*", e=".*", r=".*", n=r"\d", dur=".*"))]
        assert len(mine) >= 12, title_t
        if months is not None:
            assert set(times[mine.index].dt.month) <= set(months), title_t


def test_another_seed_another_corpus_of_the_same_shape():
    """The seed drives every draw; the size does not depend on it."""
    a, b = demo.build(seed=1, per_template=2), demo.build(seed=2, per_template=2)
    assert len(a) == len(b) == 2 * len(demo.T)
    assert [r["text"] for r in a] != [r["text"] for r in b]
    assert demo.build(seed=1, per_template=2) == a


def test_a_template_with_no_possible_month_is_an_error():
    """A month list no date can satisfy fails loudly instead of looping or writing a wrong date."""
    with pytest.raises(RuntimeError, match="no date"):
        demo._month_weighted_date(random.Random(0), [13], datetime(2024, 1, 1), 731)
    d = demo._month_weighted_date(random.Random(0), [7], datetime(2024, 1, 1), 731)
    assert d.month == 7 and 7 <= d.hour < 23
