import json

import pandas as pd
import pytest

from corpora.records import AppealDataError, parse_time, read_appeals


def write(tmp_path, name, content, encoding="utf-8"):
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding=encoding)
    return p


def test_message_board_export_columns_are_mapped(tmp_path):
    p = write(tmp_path, "a.csv", "留言编号,留言用户,留言主题,留言时间,留言详情,一级标签\n"
                                 "7,A001,暖气不热,2019/1/6 9:05:38,<p>暖气不热&nbsp;</p>,城乡建设\n")
    res = read_appeals(p)
    row = res.frame.iloc[0].to_dict()
    assert row["id"] == "7" and row["user"] == "A001" and row["title"] == "暖气不热"
    assert row["time"] == "2019-01-06T09:05:38"
    assert row["text"] == "暖气不热" and row["category"] == "城乡建设"
    assert res.problems == []


def test_gbk_file_is_read(tmp_path):
    p = write(tmp_path, "gbk.csv", "text,district\n小区暖气不热,东城区\n", encoding="gbk")
    assert read_appeals(p).frame["text"].tolist() == ["小区暖气不热"]


def test_utf8_bom_is_read(tmp_path):
    p = write(tmp_path, "bom.csv", "\ufefftext\n停水三天\n")
    assert read_appeals(p).frame["text"].tolist() == ["停水三天"]


def test_jsonl_and_xlsx(tmp_path):
    rows = [{"id": "a", "text": "景区门票太贵"}, {"id": "b", "text": "导游强制购物", "time": "2024-10-02 10:00"}]
    p = write(tmp_path, "a.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    assert read_appeals(p).frame["id"].tolist() == ["a", "b"]
    x = tmp_path / "a.xlsx"
    pd.DataFrame(rows).to_excel(x, index=False)
    f = read_appeals(x).frame
    assert f["text"].tolist() == ["景区门票太贵", "导游强制购物"]
    assert f["time"].tolist()[1] == "2024-10-02T10:00:00"


def test_problem_rows_are_reported_with_row_numbers_not_dropped(tmp_path):
    big = "长" * 30_000
    p = write(tmp_path, "p.csv", f"id,text,time\n1,正常诉求,2020/1/1 8:00:00\n2,,\n3,{big},\n4,好的,明天\n5,也正常,\n")
    res = read_appeals(p)
    assert res.frame["id"].tolist() == ["1", "5"]
    assert [(x.row, x.field) for x in res.problems] == [(2, "text"), (3, "text"), (4, "time")]
    assert "maximum is 20,000" in str(res.problems[1])
    assert res.rows_read == 5


@pytest.mark.parametrize("name, content, message", [
    ("nope.csv", None, "no such file"),
    ("bin.csv", b"\x00\x01\x02\x89PNG\x00" * 100, "binary"),
    ("bad.csv", b"text\n\xff\xfe\xfa\xfb\xfc\n", "cannot decode"),
    ("cols.csv", "title,body\n标题,内容\n", "no 'text' column"),
    ("a.pdf", "x", "unknown file type"),
    ("bad.jsonl", '{"text": "ok"}\n{broken\n', "line 2 is not valid JSON"),
])
def test_unreadable_files_raise_clear_errors(tmp_path, name, content, message):
    p = tmp_path / name if content is None else write(tmp_path, name, content)
    with pytest.raises(AppealDataError, match=message):
        read_appeals(p)


@pytest.mark.parametrize("value, expected", [
    ("2019/1/6 9:05:38", "2019-01-06T09:05:38"),
    ("2019/12/31 23:59", "2019-12-31T23:59:00"),
    ("2020-02-29", "2020-02-29T00:00:00"),
    ("2020年3月1日", "2020-03-01T00:00:00"),
    ("", None),
    (None, None),
])
def test_parse_time(value, expected):
    assert parse_time(value) == expected


def test_parse_time_rejects_junk():
    with pytest.raises(ValueError, match="is not a time"):
        parse_time("上周三")
