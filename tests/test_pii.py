"""Personal data never reaches a person or a log unredacted (issue 13).

One rule: anything shown to a person or written to a log goes through
``corpora.text.redact``. Each test feeds personal data in where it used to leak out and
checks that none of its digits come back.
"""
import json
import re
from datetime import date, timedelta

import pandas as pd
import pytest

from corpora.records import parse_time, read_appeals
from corpora.simulate import CityConfig, simulate_stream
from corpora.text import redact
from models.trends import Series, TrendDetector
from service import show

MOBILE, ID_NUMBER, LANDLINE = "13812345678", "430102199001011234", "84567890"
SECRETS = (MOBILE, ID_NUMBER, "43010219900101123", LANDLINE, "12345678")


def leaks(text) -> list[str]:
    """Secrets any 6 consecutive digits of which appear in ``text`` (full-width folded,
    separators inside a number ignored): a cut-off number leaks too."""
    folded = str(text).translate({cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)})
    runs = re.findall(r"[\dXx]+", re.sub(r"(?<=\d)[\s-]+(?=\d)", "", folded))
    return [s for s in SECRETS if any(s[i:i + 6] in r for i in range(len(s) - 5) for r in runs)]


# --- redact itself ------------------------------------------------------------------
@pytest.mark.parametrize("raw, expected", [
    ("手机１３８１２３４５６７８", "手机[手机号]"),                    # full-width: raw input, not normalised
    ("身份证４３０１０２１９９００１０１１２３Ｘ", "身份证[身份证号]"),
    ("邮箱ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ", "邮箱[邮箱]"),
    ("座机(0731)84567890", "座机[电话]"),                              # area code in brackets
    ("座机（0731）84567890", "座机[电话]"),
    ("座机0731 8456 7890", "座机[电话]"),                              # local number in two halves
    ("座机010-6234-5678", "座机[电话]"),
    ("2019 1234 年份和数量", "2019 1234 年份和数量"),                  # not a number without an area code
])
def test_redact_covers_more_ways_of_writing_numbers(raw, expected):
    assert redact(raw) == expected


def test_redact_kinds_and_placeholder():
    text = f"电话{MOBILE}，座机0731-{LANDLINE}，身份证{ID_NUMBER}、43010219900101123X，卡号6222021234567890123，邮箱a.b@qq.com"
    assert leaks(redact(text)) == [] and "qq.com" not in redact(text)
    assert redact(f"电话{MOBILE}谢谢", placeholder=" ") == "电话 谢谢"
    assert redact(None) == "" and redact("") == ""


# --- records: a bad time is reported without echoing it ----------------------------------
@pytest.mark.parametrize("value", [MOBILE, f"身份证{ID_NUMBER}", "明天下午" * 8 + MOBILE, f"０７３１－{LANDLINE}"])
def test_bad_time_message_names_row_and_field_and_quotes_only_redacted(tmp_path, value):
    p = tmp_path / "a.csv"
    p.write_text(f"id,text,time\n1,正常诉求,2020/1/1 8:00:00\n2,停水三天,{value}\n", encoding="utf-8")
    res = read_appeals(p)
    assert [(x.row, x.field) for x in res.problems] == [(2, "time")]
    msg = str(res.problems[0])
    assert msg.startswith("row 2, field 'time':") and "YYYY-MM-DD HH:MM:SS" in msg
    assert leaks(msg) == [], msg
    with pytest.raises(ValueError) as err:
        parse_time(value)
    assert leaks(str(err.value)) == [] and "is not a time" in str(err.value)


# --- service/show.py prints a redacted table ------------------------------------------
def test_show_redacts_every_text_it_prints(tmp_path, capsys):
    rows = [{"id": None, "row": 3, "error": f"row 3, field 'time': '{MOBILE}' is not a time"},
            {"id": f"用户{MOBILE}", "category": "城乡建设", "confidence": 0.91, "needs_review": False,
             "department": "住建局", "topic": f"新问题：{ID_NUMBER}", "urgency": "high",
             "urgency_reason": f"提到“电话{MOBILE}”和“座机0731-{LANDLINE}”",
             "deadlines": {"contact_by": "2024-10-02T10:00:00+08:00"}}]
    p = tmp_path / "tags.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    show.main(str(p))
    out = capsys.readouterr().out
    assert leaks(out) == [], out
    assert "城乡建设" in out and "住建局" in out and "2024-10-02T10:00:00+08:00" in out  # the rest is intact


# --- early warning: alert fields carry no personal data -------------------------------
def test_emerging_issue_alert_carries_no_phone_or_id_number():
    frame, _ = simulate_stream(start="2024-01-01", end="2024-06-30", seed=21,
                               city=CityConfig(seasons=False, emerging=False, incidents_per_year=0,
                                               rainstorms_per_year=0))
    # Many people report the same nuisance caller (a number written as one token) and
    # quote the same leaked ID number: the number must not become the alert's "new issue".
    extra = []
    for k in range(24):
        day = date(2024, 6, 17) + timedelta(days=k % 14)
        text = (f"我收到骚扰电话138-1234-5678，对方自称客服，报出我的身份证号{ID_NUMBER[:-1]}X，"
                f"要求转账，电话0731-{LANDLINE}也打来过") if k % 2 else \
            f"骚扰电话138-1234-5678天天打来，还知道我的身份证{ID_NUMBER[:-1]}X，请查处"
        extra.append({"id": f"x{k}", "time": pd.Timestamp(day) + pd.Timedelta(hours=10), "district": "东城区",
                      "user": f"u{k}", "text": text})
    frame = pd.concat([frame, pd.DataFrame(extra)], ignore_index=True)
    alerts = TrendDetector().fit(frame).detect("2024-06-30", since_days=14)
    emerging = [a for a in alerts if a["kind"] == "emerging"]
    assert emerging, [a["topic"] for a in alerts]  # the burst is still found as a new issue
    for a in alerts:
        shown = [v for k, v in a.items() if isinstance(v, str) and k != "as_of"]
        assert leaks(" ".join(shown)) == [], a


def test_trend_alert_district_and_category_are_redacted():
    frame, _ = simulate_stream(start="2024-01-01", end="2024-03-31", seed=22,
                               city=CityConfig(seasons=False, emerging=False, incidents_per_year=0,
                                               rainstorms_per_year=0))
    det = TrendDetector().fit(frame)
    alert = det._alert("spike", Series("category", f"类别{MOBILE}", f"{ID_NUMBER}区"), 0, 40, 42, 9, 2.0, 5.0, "摘要")
    assert leaks(json.dumps(alert, ensure_ascii=False)) == [], alert


# --- personal names (corpora/text.py: redact_names, rules in corpora/data/names.txt) ---------

@pytest.mark.parametrize("raw, expected", [
    ("村民张建国反映暖气不热", "村民[姓名]反映暖气不热"),             # after a word that introduces a person
    ("联系人：陈晓，电话13812345678", "联系人：[姓名]，电话[手机号]"),
    ("我叫刘秀英，家住幸福里", "我叫[姓名]，家住幸福里"),
    ("王先生说物业不管", "[姓名]说物业不管"),                        # a form of address
    ("物业经理黄海涛一直不处理", "物业经理[姓名]一直不处理"),          # tagged a person name by jieba
    ("申请人张建国。……我是张建国的邻居", "申请人[姓名]。……我是[姓名]的邻居"),  # found once, redacted everywhere
])
def test_names_are_redacted(raw, expected):
    from corpora.text import redact_names

    assert redact_names(raw) == expected


@pytest.mark.parametrize("text", ["谢谢您，请尽快处理许可证的事", "向阳路的路灯坏了", "严格执行高峰时段限行"])
def test_common_words_and_places_jieba_tags_as_names_are_kept(text):
    from corpora.text import redact_names

    assert redact_names(text) == text

