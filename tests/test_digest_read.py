"""The digest's file reader (service.digest._fast_read): pyarrow's parse of a file on disk
gives the rows, values and reported problems that pandas' parse of the same bytes gives,
on a file made of the cases that differ between CSV readers and between time parsers."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from corpora.records import DEFAULT_MAX_CHARS
from service.digest import _ArrowColumns, _fast_read, read_input

ROWS = [  # id, time, district, category, text
    ("1", "2024-10-21 08:00:00", "东城区", "城乡建设", "小区停水三天了，至今未恢复"),
    ("2.0", " 2024-10-21 09:15:00 ", " 西城区 ", "", "路灯坏了\n一个月没人修"),        # a quoted newline, padded time
    ("  3 ", "2024/10/21 9:05:38", "", "交通运输", '公交站牌写着"末班车21点"，实际20点就停了'),
    ("nan", "2024-10-22T10:00:00", "东城区", "城乡建设", "噪音扰民，晚上施工到凌晨"),  # id 'nan': row-N
    ("", "2024-10-22 10:00:00", "东城区", "城乡建设", "噪音扰民，晚上施工到凌晨"),       # empty id: row-N
    ("٣.0", "2024-10-22 11:00:00", "北区", "环境保护", "河道有异味"),              # non-ASCII digits before .0
    ("7", "2024-02-30 10:00:00", "东城区", "城乡建设", "日期不存在的一行"),          # not a date: reported
    ("8", "9999-12-31 20:00:00", "东城区", "城乡建设", "年份太远的一行"),            # out of range: reported
    ("9", "1960-01-01 00:00:00", "东城区", "城乡建设", "年份太早的一行"),            # out of range: reported
    ("10", "2024-01-05 23:59:60", "东城区", "城乡建设", "闰秒的一行"),               # not a time: reported
    ("11", "", "东城区", "城乡建设", "没有时间的一行"),                              # no time: kept, NaT
    ("12", "yesterday", "东城区", "城乡建设", "时间写错的一行 13800138000"),         # reported (redacted)
    ("13", "2024-10-23 12:00:00", "东城区", "城乡建设", "   "),                      # empty text: reported
    ("14", "2024-10-23 12:30:00", "ＡＢ区", "城乡建设", "全角字母的区名"),             # normalised district
    ("15", "2024-10-23 13:00:00", "东城区", "城乡建设", "x" * (DEFAULT_MAX_CHARS + 5)),  # too long: reported
    ("16", "2024-10-24 08:00:00", "东城区", "城乡建设", "小区停水三天了，至今未恢复"),  # a repeated text
]


def _write(path, rows, *, bom=False, crlf=False):
    frame = pd.DataFrame(rows, columns=["id", "time", "district", "category", "text"])
    frame["extra"] = "not read"
    data = frame.to_csv(index=False, lineterminator="\r\n" if crlf else "\n").encode("utf-8")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return data


@pytest.mark.parametrize("bom,crlf", [(False, False), (True, True)])
def test_pyarrow_reads_a_file_as_pandas_does(tmp_path, bom, crlf):
    path = tmp_path / "appeals.csv"
    _write(path, ROWS, bom=bom, crlf=crlf)
    assert _ArrowColumns.read(path, ",", {c: c for c in ("id", "time", "district", "category", "text")}) is not None
    by_arrow = _fast_read(path, ",", DEFAULT_MAX_CHARS)
    by_pandas = _fast_read(io.BytesIO(path.read_bytes()), ",", DEFAULT_MAX_CHARS)  # a file object: pandas
    assert by_arrow is not None and by_pandas is not None
    pd.testing.assert_frame_equal(by_arrow[0], by_pandas[0])
    assert sorted(map(str, by_arrow[1])) == sorted(map(str, by_pandas[1]))
    assert by_arrow[2] == by_pandas[2] == len(ROWS)

    frame, problems = by_arrow[0], {p.row: p for p in by_arrow[1]}
    assert sorted(problems) == [7, 8, 9, 10, 12, 13, 15]
    assert {problems[r].field for r in problems} == {"time", "text"}
    assert "13800138000" not in str(problems[12])  # the value is quoted redacted
    assert "between 1970 and 2100" in str(problems[8]) and "between 1970 and 2100" in str(problems[9])
    assert frame["id"].tolist()[:6] == ["1", "2", "3", "row-4", "row-5", "٣"]
    assert frame["text"].iloc[1] == "路灯坏了 一个月没人修"  # the newline inside quotes, normalised
    assert frame["time"].iloc[1] == pd.Timestamp("2024-10-21 09:15:00")
    assert frame["time"].iloc[2] == pd.Timestamp("2024-10-21 09:05:38")
    assert frame["district"].iloc[1] == "西城区" and frame["district"].isna().tolist()[2]
    assert frame["category"].isna().tolist()[1] and frame["district"].iloc[7] == "AB区"
    assert frame.loc[frame["id"] == "11", "time"].isna().all()
    assert frame["text"].iloc[0] is frame.loc[frame["id"] == "16", "text"].iloc[0]  # one object per distinct text
    assert "extra" not in frame.columns


def test_a_short_row_is_read_by_pandas(tmp_path):
    path = tmp_path / "appeals.csv"
    data = _write(path, ROWS[:3])
    path.write_bytes(data + "4,2024-10-21 10:00:00,东城区\n".encode())  # two fields missing
    assert _ArrowColumns.read(path, ",", {c: c for c in ("id", "time", "district", "category", "text")}) is None
    frame = read_input(path)
    assert len(frame) == 3  # the short row has no text: reported, left out (as read_appeals does)


def test_of_two_columns_of_one_name_the_first_is_read(tmp_path):
    path = tmp_path / "appeals.csv"
    path.write_text("id,time,text,text\n1,2024-10-21 08:00:00,小区停水,重复的列\n", encoding="utf-8")
    got = _ArrowColumns.read(path, ",", {"id": "id", "time": "time", "text": "text"})
    assert got.values("text").tolist() == ["小区停水"]
    by_pandas = _fast_read(io.BytesIO(path.read_bytes()), ",", DEFAULT_MAX_CHARS)[0]
    pd.testing.assert_frame_equal(read_input(path), by_pandas)
    assert by_pandas["text"].tolist() == ["小区停水"] and np.issubdtype(by_pandas["time"].dtype, np.datetime64)
