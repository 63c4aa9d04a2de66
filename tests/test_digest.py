"""The weekly risk digest (service/digest.py, issue 15) on small simulated cities."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from corpora.simulate import CityConfig, simulate_stream
from service.digest import build_digest, render, scrub_names
from tests.conftest import TIPDM

HEATING_WEEK = "2024-11-24"  # the simulated northern city's heating season begins 11-12 … 11-21
PHONE, ID_NUMBER, NAME = "13812345678", "110101199003071234", "张伟"
INJECTED = (f"我叫{NAME}，电话{PHONE}，身份证{ID_NUMBER}，东城区幸福里小区暖气不热，室温只有十二度，"
            "请供热公司尽快处理。王先生也反映了同样问题。")


def _with_pii(frame: pd.DataFrame, week_end: str, n: int = 6) -> pd.DataFrame:
    days = pd.date_range(end=week_end, periods=n)
    rows = pd.DataFrame({"id": [f"pii-{i}" for i in range(n)],
                         "time": [f"{d.date()}T10:{10 + i:02d}:00" for i, d in enumerate(days)],
                         "district": "东城区", "category": "城乡建设", "text": INJECTED})
    return pd.concat([frame, rows], ignore_index=True)


@pytest.fixture(scope="module")
def heating():
    city = CityConfig(background="shipped", base_per_day=40)
    frame, truth = simulate_stream(start="2023-09-01", end=HEATING_WEEK, city=city, seed=2)
    frame = _with_spike(_with_pii(frame, HEATING_WEEK), HEATING_WEEK)
    return frame, build_digest(frame, HEATING_WEEK)


def _with_spike(frame: pd.DataFrame, week_end: str, n: int = 24) -> pd.DataFrame:
    """A noise incident in one district over the week's last three days."""
    days = pd.date_range(end=week_end, periods=3)
    sites = ["滨河路", "学院路", "新华街"]
    rows = pd.DataFrame({"id": [f"noise-{i}" for i in range(n)],
                         "time": [f"{days[i % 3].date()}T{8 + i % 12:02d}:30:00" for i in range(n)],
                         "district": "南湖区", "category": "环境保护",
                         "text": [f"南湖区{sites[i % 3]}工地夜间施工噪音扰民，第{i}天凌晨还在打桩，请环保部门查处。"
                                  for i in range(n)]})
    return pd.concat([frame, rows], ignore_index=True)


@pytest.fixture(scope="module")
def quiet():
    city = CityConfig(background="shipped", base_per_day=30, seasons=False, in_season_incidents=False,
                      incidents_per_year=0, surges_per_year=0, rainstorms_per_year=0, emerging=False)
    frame, truth = simulate_stream(start="2024-01-01", end="2024-09-29", city=city, seed=4)
    assert truth == []
    return build_digest(frame, "2024-09-29")


def test_heating_onset_week_names_the_heating_rise(heating):
    _, d = heating
    rising = [c for c in d["coming_up"] if c["status"] == "rising"]
    assert [c["topic"] for c in rising] == ["冬季采暖"]
    assert "本周已开始季节性上升" in rising[0]["sentence"] and rising[0]["evidence_ids"]
    assert not d["quiet"]
    assert any("冬季采暖" in line and "上升" in line for line in d["summary"])
    html = render(d, "html")
    assert "冬季采暖：本周已开始季节性上升" in html


def test_quiet_week_says_so_and_lists_no_risks(quiet):
    assert quiet["quiet"] is True
    assert quiet["risks"] == []
    assert [c for c in quiet["coming_up"] if c["status"] == "rising"] == []
    assert any("本周平稳" in line for line in quiet["summary"])
    html = render(quiet, "html")
    assert "本周未发现需要处置的异常上升" in html
    assert "本周平稳" in render(quiet, "md")


def test_a_spike_is_a_ranked_risk_with_its_department_and_chart(heating):
    _, d = heating
    noise = [r for r in d["risks"] if r["district"] == "南湖区" and (r["topic"] == "噪音" or r["category"] == "环境保护")]
    assert noise, [r["title"] for r in d["risks"]]
    r = noise[0]
    assert r["kind"] == "spike" and r["department"].startswith("市生态环境局")
    assert any(i.startswith("noise-") for i in r["evidence_ids"])
    assert r["observed"] > r["expected"] and len(r["chart"]["counts"]) == 35 and r["chart"]["counts"][-1] >= 8
    assert [x["rank"] for x in d["risks"]] == list(range(1, len(d["risks"]) + 1))


def test_every_headline_number_lists_its_appeal_ids(heating):
    frame, d = heating
    h = d["headline"]
    week = frame[pd.to_datetime(frame["time"], format="ISO8601").dt.normalize() >= pd.Timestamp(HEATING_WEEK) - pd.Timedelta(days=6)]
    assert h["received"]["value"] == len(week) == len(h["received"]["ids"])
    assert set(h["received"]["ids"]) == set(week["id"])
    for key in ("previous_week", "same_week_last_year"):
        assert h[key]["value"] == len(h[key]["ids"])
    assert h["same_week_last_year"]["week_ending"] == "2023-11-26"
    for r in d["risks"]:
        assert r["evidence_ids"] and r["department"]
        assert 1 <= len(r["examples"]) <= 3
    cells = [c for row in d["heat_table"]["cells"].values() for c in row.values()]
    assert sum(c["value"] for c in cells) == h["received"]["value"]
    assert all(c["value"] == len(c["ids"]) for c in cells)
    hs = d["hotspots"]
    for g in hs["groups"]:
        assert g["size"] == len(g["ids"])
    # the totals count every group, not only those listed: their ids are the ones behind them
    assert hs["total_groups"] > len(hs["groups"])
    assert hs["appeals_in_groups"] == len(hs["ids"]) == len(set(hs["ids"]))
    assert {i for g in hs["groups"] for i in g["ids"]} < set(hs["ids"]) <= set(h["received"]["ids"])
    html = render(d, "html")
    for some_id in h["received"]["ids"][:50] + h["previous_week"]["ids"][:50]:
        assert some_id in html


def test_no_personal_data_in_any_form(heating):
    _, d = heating
    assert any(e["id"].startswith("pii-") for r in d["risks"] for e in r["examples"]) or any(
        g["ids"] and any(i.startswith("pii-") for i in g["ids"]) for g in d["hotspots"]["groups"])
    for fmt in ("html", "md", "json"):
        out = render(d, fmt)
        for raw in (PHONE, ID_NUMBER, NAME, "王先生"):
            assert raw not in out, (fmt, raw)


def test_no_personal_data_with_real_texts():
    real = pd.read_csv(TIPDM, dtype=str) if TIPDM.exists() else None
    if real is None:
        pytest.skip(f"{TIPDM} is absent (real data from ../shared/corpora is optional)")
    from corpora.text import _PII_PATTERNS, normalise

    text_col = next(c for c in real.columns if c in ("text", "留言详情"))
    texts = [normalise(t) for t in real[text_col].dropna().tolist()]
    with_pii = [t for t in texts if any(p.search(t) for _, p in _PII_PATTERNS)][:300]
    assert with_pii, "the real corpus should hold some personal data to test against"
    city = CityConfig(background="shipped", base_per_day=20, seasons=False, emerging=False)
    frame, _ = simulate_stream(start="2024-03-01", end="2024-06-30", city=city, seed=5)
    days = pd.date_range(end="2024-06-30", periods=7)
    extra = pd.DataFrame({"id": [f"real-{i}" for i in range(len(with_pii))],
                          "time": [f"{days[i % 7].date()}T09:00:00" for i in range(len(with_pii))],
                          "district": "东城区", "text": with_pii})
    d = build_digest(pd.concat([frame, extra], ignore_index=True), "2024-06-30")
    raw = {m.group(0) for t in with_pii for _, p in _PII_PATTERNS for m in p.finditer(t) if len(m.group(0)) >= 7}
    for fmt in ("html", "md", "json"):
        out = render(d, fmt)
        leaked = [r for r in raw if r in out]
        assert not leaked, (fmt, len(leaked))


def test_scrub_names():
    assert scrub_names("联系人：李秀英，电话13812345678") == "联系人：[姓名]，电话[手机号]"
    assert scrub_names("刘女士反映楼道漏水") == "[姓名]反映楼道漏水"
    assert scrub_names("小区暖气不热") == "小区暖气不热"


def test_html_is_self_contained_with_inline_svg(heating):
    _, d = heating
    html = render(d, "html")
    assert html.startswith("<!DOCTYPE html>") and 'charset="utf-8"' in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert "@media print" in html and "@page" in html and 'name="viewport"' in html
    assert d["risks"] and html.count("<svg") == 1 + min(len(d["risks"]), 8)  # the week's volume, each risk
    svg = html[html.index("<svg"):html.index("</svg>")]
    assert "<text" not in svg  # glyphs drawn as paths: no font needed on the reader's machine
    assert "<path" in svg


def test_markdown_and_json_forms(heating):
    _, d = heating
    md = render(d, "md")
    assert md.startswith("# 12345诉求周报") and "## 二、需要处置的风险" in md and "## 六、模型状况" in md
    back = json.loads(render(d, "json"))
    assert back["week_ending"] == HEATING_WEEK and back["headline"]["received"] == d["headline"]["received"]
    with pytest.raises(ValueError, match="format must be one of"):
        render(d, "pdf")


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="'time' is missing"):
        build_digest(pd.DataFrame({"id": ["1"], "text": ["x"]}), "2024-01-07")
    with pytest.raises(ValueError, match="week_ending must be a date"):
        build_digest(pd.DataFrame({"id": ["1"], "time": ["2024-01-01"], "text": ["x"]}), "last week")


@pytest.fixture(scope="module")
def small_city_csv(tmp_path_factory):
    city = CityConfig(background="shipped", base_per_day=8, seasons=False, emerging=False)
    frame, _ = simulate_stream(start="2024-03-01", end="2024-06-30", city=city, seed=6)
    frame = _with_pii(frame.drop(columns=["category"]), "2024-06-30", n=3)
    path = tmp_path_factory.mktemp("digest") / "appeals.csv"
    frame.to_csv(path, index=False)
    return path


def test_cli_from_a_file(small_city_csv, demo_bundle, tmp_path):
    from service.cli import main

    out = tmp_path / "digest.html"
    rc = main(["digest", "--input", str(small_city_csv), "--week-ending", "2024-06-30", "--output", str(out),
               "--model", str(demo_bundle.path), "-q"])
    assert rc == 0
    html = out.read_text(encoding="utf-8")
    assert "12345诉求周报" in html and PHONE not in html and NAME not in html
    assert demo_bundle.version in html  # categories and urgency tagged by --model
    rc = main(["digest", "--input", str(small_city_csv), "--week-ending", "2024-06-30", "--output",
               str(tmp_path / "d.json"), "-q"])
    d = json.loads((tmp_path / "d.json").read_text(encoding="utf-8"))
    assert rc == 0 and d["source"] == "file" and d["headline"]["critical"]["value"] is None
    assert main(["digest", "--input", str(small_city_csv), "--week-ending", "2024-13-01", "--output",
                 str(out)]) == 3


def test_cli_from_a_database_made_by_ingest(small_city_csv, demo_bundle, tmp_path, monkeypatch, capsys):
    from service.cli import main

    url = f"sqlite:///{tmp_path / 'suqiu.db'}"
    monkeypatch.setenv("SUQIU_DATABASE_URL", url)
    assert main(["ingest", "--input", str(small_city_csv), "--model", str(demo_bundle.path), "-q"]) == 0
    out = tmp_path / "digest.md"
    assert main(["digest", "--week-ending", "2024-06-30", "--output", str(out)]) == 0  # SUQIU_DATABASE_URL
    md = out.read_text(encoding="utf-8")
    assert "数据来源：数据库" in md and PHONE not in md and NAME not in md
    js = tmp_path / "digest.json"
    assert main(["digest", "--db", url, "--week-ending", "2024-06-30", "--output", str(js)]) == 0
    d = json.loads(js.read_text(encoding="utf-8"))
    frame = pd.read_csv(small_city_csv, dtype=str)
    week = frame[pd.to_datetime(frame["time"], format="ISO8601") >= pd.Timestamp("2024-06-24")]
    assert set(d["headline"]["received"]["ids"]) == set(week["id"])
    assert d["model_health"]["corrections"]["value"] == 0
    assert d["model_health"]["model_versions"][0]["version"] == demo_bundle.version
    assert all(x["finish_by"] for x in d["critical_urgent"]["items"])
    capsys.readouterr()
    assert main(["digest", "--db", url, "--week-ending", "2019-06-30", "--output", str(js)]) == 3
    assert "no appeals" in capsys.readouterr().err


def test_the_week_grouped_in_a_second_process_is_grouped_as_here():
    """A big week's hotspots are grouped in a forked process, this one computing a share of
    the text features (service.digest._Grouping): the same groups as grouping here."""
    from service.digest import _group_week, _Grouping

    city = CityConfig(background="shipped", base_per_day=150, senders=True)
    frame, _ = simulate_stream(start="2024-06-01", end="2024-06-14", city=city, seed=9)
    frame["time"] = pd.to_datetime(frame["time"])
    g = _Grouping(frame)
    g.help()
    assert g.result() == _group_week(frame)
    broken = _Grouping(frame.drop(columns=["time"]).assign(time="no time"))
    with pytest.raises(ValueError, match="time"):
        broken.result()
