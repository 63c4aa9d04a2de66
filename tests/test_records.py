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
    ("bin.csv", b"\x00\x01\x02\x89PNG\x00" * 100,
     r"binary file \(NUL bytes\), not text\. Give a UTF-8 or GBK CSV/TSV/JSONL file or an \.xlsx workbook\."),
    ("bad.csv", b"text\n\xff\xfe\xfa\xfb\xfc\n", "cannot decode"),
    ("cols.csv", "title,body\n标题,内容\n",
     r"no 'text' column \(found: title, body\)\. The appeal text must be in a column named 'text' "
     r"\(or 留言详情 / 诉求内容 / content\)\."),
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
    with pytest.raises(ValueError, match=r"'1.5' is not a time"):  # a number is not a missing time
        parse_time(1.5)


# --- file kinds and their errors -------------------------------------------------------------

def test_tsv_and_json_array_files(tmp_path):
    t = write(tmp_path, "a.tsv", "编号\t诉求内容\t区县\n9\t暖气不热，家里冷\t东城区\n")
    f = read_appeals(t).frame
    assert f[["id", "text", "district"]].values.tolist() == [["9", "暖气不热,家里冷", "东城区"]]
    j = write(tmp_path, "a.json", ' \n[{"text": "停水三天", "id": 3}, {"text": "停电"}]')
    assert read_appeals(j).frame[["id", "text"]].values.tolist() == [["3", "停水三天"], ["row-2", "停电"]]


def test_jsonl_skips_blank_lines_and_a_json_file_may_hold_lines(tmp_path):
    p = write(tmp_path, "a.json", '{"text": "停水"}\n\n   \n{"text": "停电"}\n')
    res = read_appeals(p)
    assert res.frame["text"].tolist() == ["停水", "停电"] and res.rows_read == 2


@pytest.mark.parametrize("name, content, message", [
    ("arr.json", '[{"text": "停水"},\n {"text": }]', r"arr\.json: invalid JSON at line 2: "),
    ("arr.jsonl", '["停水"]\n', r"every JSON line must be an object"),
    ("a.csv", "text,id\n停水,1\n停电,2,多,余\n", r"a\.csv: not a valid CSV file \("),
    ("a.tsv", "text\tid\n停水\t1\n停电\t2\t多\t余\n", r"a\.tsv: not a valid TSV file \("),
    ("a.xlsx", b"PK\x03\x04 not really a workbook", r"a\.xlsx: not a readable \.xlsx workbook \("),
])
def test_malformed_files_name_the_file_and_the_fault(tmp_path, name, content, message):
    with pytest.raises(AppealDataError, match=message):
        read_appeals(write(tmp_path, name, content))


def test_a_directory_and_an_undecodable_byte_are_explained(tmp_path):
    with pytest.raises(AppealDataError, match="is a directory; give a data file"):
        read_appeals(tmp_path)
    bad = write(tmp_path, "bad.csv", b"text\n" + "停水".encode() + b"\x81\x20\xff\n")
    with pytest.raises(AppealDataError, match=r"bad byte at offset 11\) or GBK/GB18030\. Re-save the file as UTF-8\.$"):
        read_appeals(bad)


def test_nul_bytes_only_count_in_the_first_64_kib(tmp_path):
    body = ("停水三天" * 30 + "\n") * 200  # > 64 KiB of UTF-8
    p = write(tmp_path, "late.csv", ("text\n" + body).encode() + b"\x00\n")
    assert read_appeals(p).rows_read >= 200


# --- columns, ids and fields -------------------------------------------------------------------

def test_column_names_match_case_and_space_insensitively_first_one_wins(tmp_path):
    p = write(tmp_path, "a.csv", " Text ,内容,ID,Extra\n暖气不热,第二个文本列,42.0,x\n")
    res = read_appeals(p)
    row = res.frame.iloc[0].to_dict()
    assert row["text"] == "暖气不热" and row["id"] == "42"
    assert row["内容"] == "第二个文本列" and row["Extra"] == "x"  # kept as they are
    assert list(res.frame.columns) == ["id", "time", "title", "text", "district", "user", "channel", "category",
                                       "urgency", "内容", "Extra"]


@pytest.mark.parametrize("raw_id, expected", [("", "row-1"), ("nan", "row-1"), ("  a7 ", "a7"), ("7.0", "7"),
                                              ("7.5", "7.5"), ("x7.0", "x7.0")])
def test_ids_are_cleaned_or_made_from_the_row_number(tmp_path, raw_id, expected):
    p = write(tmp_path, "a.csv", f'id,text\n"{raw_id}",暖气不热\n')
    assert read_appeals(p).frame["id"].tolist() == [expected]


def test_ids_from_json_numbers_and_nulls(tmp_path):
    p = write(tmp_path, "a.jsonl", '{"id": 7.0, "text": "停水"}\n{"id": null, "text": "停电"}\n'
                                   '{"id": NaN, "text": "停气"}\n')
    assert read_appeals(p).frame["id"].tolist() == ["7", "row-2", "row-3"]


def test_optional_fields_are_normalised_and_empty_ones_are_none(tmp_path):
    p = write(tmp_path, "a.jsonl", '{"text": "停水", "title": "停水了　", "district": "", "channel": null, '
                                   '"category": "城鄉建設", "urgency": NaN, "user": " u1 "}\n'
                                   '{"text": 3.5, "channel": "微信公眾號　", "urgency": " urgent", "district": "ＮＡ"}\n')
    rows = read_appeals(p).frame.to_dict(orient="records")
    row = rows[0]
    assert row["title"] == "停水了" and row["category"] == "城乡建设" and row["user"] == "u1"
    assert row["district"] is None and row["channel"] is None and row["urgency"] is None and row["time"] is None
    # every optional field is normalised; a number where text belongs is read as its text
    assert (rows[1]["text"], rows[1]["channel"], rows[1]["urgency"], rows[1]["district"]) == (
        "3.5", "微信公众号", "urgent", "NA")


def test_csv_cells_are_read_as_written(tmp_path):
    """Ids keep their leading zeros and 'NA' / 'null' are text, not missing values."""
    p = write(tmp_path, "a.csv", "id,text,district\n007,停水,NA\n0010,null,天桥区\n")
    f = read_appeals(p).frame
    assert f[["id", "text", "district"]].values.tolist() == [["007", "停水", "NA"], ["0010", "null", "天桥区"]]


def test_ndjson_files_are_json_lines(tmp_path):
    p = write(tmp_path, "a.ndjson", '{"text": "停水"}\n{"text": "停电"}\n')
    assert read_appeals(p).frame["text"].tolist() == ["停水", "停电"]


def test_source_rows_follow_the_input_around_problem_rows(tmp_path):
    p = write(tmp_path, "a.csv", "text,time\n停水,\n,\n停电,明天\n停气,2020/1/1\n")
    res = read_appeals(p)
    assert res.source_row == [1, 4] and res.frame["text"].tolist() == ["停水", "停气"]
    assert str(res.problems[0]) == "row 2, field 'text': text is empty"


def test_without_require_text_rows_need_no_text(tmp_path):
    p = write(tmp_path, "a.csv", "id,district\n1,东城区\n")
    f = read_appeals(p, require_text=False).frame
    assert f[["id", "text", "district"]].values.tolist() == [["1", "", "东城区"]]
    with pytest.raises(AppealDataError, match=r"no 'text' column \(found: id, district\)"):
        read_appeals(p)


# --- text limits ------------------------------------------------------------------------------------

def test_max_chars_is_the_callers_limit_on_normalised_text(tmp_path):
    p = write(tmp_path, "a.csv", "text\n" + "长" * 10 + "\n" + "长" * 11 + "\n" + "长 " * 10 + "\n")
    res = read_appeals(p, max_chars=10)
    assert res.frame["text"].str.len().tolist() == [10]
    assert [(x.row, x.message) for x in res.problems] == [
        (2, "text is 11 characters; the maximum is 10"), (3, "text is 19 characters; the maximum is 10")]


def test_a_huge_raw_text_is_refused_before_normalising(tmp_path):
    p = write(tmp_path, "a.csv", "text\n" + "<br>" * 11 + "停" + "\n" + "<br>" * 11 + "\n")
    res = read_appeals(p, max_chars=11)
    # 4 x 11 = 44 raw characters are the most read for a limit of 11: 45 are refused as they
    # are (though they would normalise to one character); 44 are read and normalise to nothing
    assert [(x.row, x.message) for x in res.problems] == [(1, "text is 45 characters; the maximum is 11"),
                                                          (2, "text is empty")]


@pytest.mark.parametrize("junk, refused", [(11, True), (10, False)])
def test_binary_junk_is_told_from_text_with_a_few_bad_characters(tmp_path, junk, refused):
    text = "\ufffd" * junk + "暖气不热" * 5 + "家里很冷"  # 24 characters of text: a fifth is 4 or 7
    p = write(tmp_path, "a.jsonl", json.dumps({"text": text}) + "\n")
    res = read_appeals(p)
    assert bool(res.problems) is refused
    if refused:
        assert res.problems[0].message == "text looks like binary junk (mostly undecodable characters)"


def test_spaces_are_not_junk(tmp_path):
    p = write(tmp_path, "a.jsonl", json.dumps({"text": "停 水" * 15}) + "\n")  # 15 spaces in 45 characters
    assert not read_appeals(p).problems


def test_junk_share_counts_against_a_fifth_of_long_texts(tmp_path):
    long = "暖" * 100
    rows = [{"text": "\ufffd" * 25 + long}, {"text": "\ufffd" * 26 + long}]  # 25 of 125 is a fifth: kept
    p = write(tmp_path, "a.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    res = read_appeals(p)
    assert res.source_row == [1] and [x.row for x in res.problems] == [2]


# --- times --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (float("nan"), None), ("NaN", None), ("NaT", None), ("none", None), ("  ", None),
    ("2019/1/6", "2019-01-06T00:00:00"),
    ("2019-01-06 09:05:38", "2019-01-06T09:05:38"),
    ("2019-01-06 09:05", "2019-01-06T09:05:00"),
    ("2019年1月6日 9:05", "2019-01-06T09:05:00"),
    ("2020-02-29T23:59:00+08:00", "2020-02-29T23:59:00+08:00"),
    (pd.Timestamp("2021-03-04 05:06:07"), "2021-03-04T05:06:07"),
])
def test_parse_time_more_formats(value, expected):
    assert parse_time(value) == expected


def test_a_bad_time_is_quoted_only_redacted_and_short():
    with pytest.raises(ValueError) as err:
        parse_time("联系13812345678")
    assert "13812345678" not in str(err.value) and "'联系[手机号]' is not a time; expected" in str(err.value)
    with pytest.raises(ValueError) as err:
        parse_time("很久" * 20)
    assert str(err.value).startswith(repr("很久" * 15 + "…") + " is not a time")
    assert str(err.value).endswith("(YYYY-MM-DD HH:MM:SS, YYYY/M/D H:MM:SS, YYYY年M月D日 or ISO 8601)")
    for n, shown in ((30, "久" * 30), (31, "久" * 30 + "…")):  # thirty characters are quoted whole
        with pytest.raises(ValueError) as err:
            parse_time("久" * n)
        assert str(err.value).startswith(repr(shown) + " is not a time")


def test_appeal_texts_without_a_title_column():
    from corpora.records import appeal_texts

    assert appeal_texts(pd.DataFrame({"text": ["停水", "停电"]})) == ["停水", "停电"]
    assert appeal_texts(pd.DataFrame({"title": ["停水", None], "text": [float("nan"), "停电"]})) == ["停水", "停电"]
    assert appeal_texts(pd.DataFrame({"title": ["停水", None], "text": ["三天了", "停电"]})) == ["停水。三天了", "停电"]
