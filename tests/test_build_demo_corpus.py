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
    """`python -m corpora.build_demo_corpus` regenerates corpora/data/demo_appeals.csv exactly,
    creating its folder, and can be run again over its own output."""
    shipped = demo.OUT.read_bytes()
    monkeypatch.setattr(demo, "OUT", tmp_path / "repo" / "data" / "demo_appeals.csv")
    demo.main()
    demo.main()
    assert demo.OUT.read_bytes() == shipped


class _Counting(random.Random):
    """random.Random counting its draws (the script's retry budgets are counted in draws)."""

    draws = 0

    def choice(self, seq):
        type(self).draws += 1
        return super().choice(seq)

    def randrange(self, *args):
        type(self).draws += 1
        return super().randrange(*args)


def test_a_template_that_cannot_vary_gives_up_after_500_tries(monkeypatch):
    """A template with one possible text yields it once (no duplicates), after 500 tries."""
    monkeypatch.setattr(demo, "T", [("城乡建设", "routine", None, "路灯不亮", "路灯不亮，请修理。")])
    monkeypatch.setattr(demo, "OPEN", [""])
    monkeypatch.setattr(demo, "CLOSE", [""])
    monkeypatch.setattr(demo.random, "Random", _Counting)
    _Counting.draws = 0
    rows = demo.build(per_template=2)
    assert [r["text"] for r in rows] == ["路灯不亮，请修理。"]
    # each try draws district, estate, road, number (randint), duration, opening and closing;
    # the one kept row also draws a date (a day and a second: any month will do) and a channel
    assert _Counting.draws == 500 * 7 + 2 + 1


def test_times_fall_between_seven_and_eleven_at_night():
    """Appeals are timed from 07:00:00 to 22:59:59, never at 23:00 or later."""
    rng = random.Random(3)
    start = datetime(2024, 1, 1)
    seconds = [(demo._month_weighted_date(rng, None, start, 731) - start).seconds for _ in range(20000)]
    assert min(seconds) >= 7 * 3600 and max(seconds) < 23 * 3600
    assert max(seconds) > 23 * 3600 - 60  # the whole range is used


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
    _Counting.draws = 0
    with pytest.raises(RuntimeError, match="^no date found$"):
        demo._month_weighted_date(_Counting(0), [13], datetime(2024, 1, 1), 731)
    assert _Counting.draws == 1000 * 2  # 1,000 tries of a day and a second
    d = demo._month_weighted_date(random.Random(0), [7], datetime(2024, 1, 1), 731)
    assert d.month == 7 and 7 <= d.hour < 23
