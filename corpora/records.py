"""Readers for appeal data: CSV / TSV / JSONL / XLSX into the canonical appeal record.

Canonical columns (English everywhere): ``id`` (str), ``time`` (ISO 8601 str or None),
``title``, ``text``, ``district``, ``user``, ``channel`` (optional str), and the gold
labels ``category`` and ``urgency`` where known. Other input columns are kept as they are.

Rows that cannot be used are never dropped silently: :func:`read_appeals` returns them
in ``ReadResult.problems`` with their 1-based data row number and the field at fault.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import pandas as pd

from corpora.text import DATA_DIR, join_title, normalise, redact

__all__ = ["AppealDataError", "Problem", "ReadResult", "read_appeals", "appeal_texts",
           "CANONICAL_FIELDS", "DEFAULT_MAX_CHARS"]

CANONICAL_FIELDS = ["id", "time", "title", "text", "district", "user", "channel", "category", "urgency"]
DEFAULT_MAX_CHARS = 20_000
SUPPORTED = {".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".xlsx"}


class AppealDataError(ValueError):
    """Input that cannot be read at all; the message says what and how to fix it."""


@dataclass(frozen=True)
class Problem:
    row: int  # 1-based data row (header not counted)
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, field '{self.field}': {self.message}"


@dataclass
class ReadResult:
    frame: pd.DataFrame  # usable rows, canonical columns, in input order
    problems: list[Problem] = field(default_factory=list)  # rows that were not usable
    rows_read: int = 0
    source_row: list[int] = field(default_factory=list)  # 1-based input row of each frame row


@lru_cache(maxsize=1)
def _column_aliases() -> dict[str, str]:
    with open(DATA_DIR / "columns.csv", encoding="utf-8") as fh:
        return {r["alias"].strip().lower(): r["field"] for r in csv.DictReader(fh)}


def _decode(raw: bytes, path: Path) -> str:
    if b"\x00" in raw[:65536]:
        raise AppealDataError(
            f"{path}: looks like a binary file (NUL bytes), not text. "
            "Give a UTF-8 or GBK CSV/TSV/JSONL file or an .xlsx workbook.")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise AppealDataError(
            f"{path}: cannot decode as UTF-8 (bad byte at offset {err.start}) or GBK/GB18030. "
            "Re-save the file as UTF-8.") from None
    raise AssertionError("unreachable")


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        try:
            return pd.read_excel(path, dtype=str, engine="openpyxl")
        except Exception as err:  # openpyxl raises many types for corrupt files
            raise AppealDataError(f"{path}: not a readable .xlsx workbook ({type(err).__name__}: {err}).") from None
    text = _decode(path.read_bytes(), path)
    if suffix in {".jsonl", ".ndjson", ".json"}:
        stripped = text.lstrip()
        if suffix == ".json" and stripped.startswith("["):
            try:
                rows = json.loads(text)
            except json.JSONDecodeError as err:
                raise AppealDataError(f"{path}: invalid JSON at line {err.lineno}: {err.msg}.") from None
        else:
            rows = []
            for lineno, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise AppealDataError(f"{path}: line {lineno} is not valid JSON ({err.msg}).") from None
        if not all(isinstance(r, dict) for r in rows):
            raise AppealDataError(f"{path}: every JSON line must be an object like {{\"text\": \"...\"}}.")
        return pd.DataFrame(rows, dtype=object)
    sep = "\t" if suffix == ".tsv" else ","
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, csv.Error) as err:
        raise AppealDataError(f"{path}: not a valid {'TSV' if sep == chr(9) else 'CSV'} file ({err}).") from None


_TIME_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y-%m-%d %H:%M:%S",
                 "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日")


def parse_time(value) -> str | None:
    """Normalise a timestamp to ISO 8601 (``YYYY-MM-DDTHH:MM:SS``); None when empty.

    Raises ValueError for a value that is present but not a time; its message quotes the
    value only through :func:`corpora.text.redact`.

    Examples
    --------
    >>> parse_time("2019/1/6 9:05:38")
    '2019-01-06T09:05:38'
    >>> parse_time("2020-02-29T23:59:00+08:00")
    '2020-02-29T23:59:00+08:00'
    """
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    s = str(value).strip()
    if not s or s.lower() in {"nan", "nat", "none"}:
        return None
    if isinstance(value, (datetime, pd.Timestamp)):
        return pd.Timestamp(value).isoformat()
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(s, fmt).isoformat()
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(s).isoformat()
    except ValueError:
        # The value may be anything typed into the column (a phone number, a name): quote it
        # only redacted and cut short, after redaction so no part of a number slips through.
        shown = redact(s)
        shown = shown if len(shown) <= 30 else shown[:30] + "…"
        raise ValueError(f"{shown!r} is not a time; expected a date and time such as 2019-01-06 09:05:38 "
                         "(YYYY-MM-DD HH:MM:SS, YYYY/M/D H:MM:SS, YYYY年M月D日 or ISO 8601)") from None


def check_text(raw_text: str, max_chars: int, *, require_text: bool = True) -> tuple[str | None, str | None]:
    """(the normalised text, None) of a text field, or (None, why it is refused): longer
    than ``max_chars`` and, when ``require_text``, empty or mostly undecodable characters.

    Examples
    --------
    >>> check_text("  小区停水 ", 100)
    ('小区停水', None)
    >>> check_text("   ", 100)
    (None, 'text is empty')
    """
    if len(raw_text) > max_chars * 4:
        return None, f"text is {len(raw_text):,} characters; the maximum is {max_chars:,}"
    text = normalise(raw_text)
    if require_text:
        if not text:
            return None, "text is empty"
        if len(text) > max_chars:
            return None, f"text is {len(text):,} characters; the maximum is {max_chars:,}"
        # normalise dropped control characters: what is left of junk is U+FFFD (undecodable)
        if text.count("\ufffd") > max(10, len(text) // 5):
            return None, "text looks like binary junk (mostly undecodable characters)"
    return text, None


def _clean_id(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    s = str(value).strip()
    if not s or s.lower() == "nan":
        return None
    if re.fullmatch(r"\d+\.0", s):  # ids that went through a float column
        s = s[:-2]
    return s


def read_appeals(path, *, max_chars: int = DEFAULT_MAX_CHARS, require_text: bool = True) -> ReadResult:
    """Read appeals from ``path`` (CSV, TSV, JSONL/JSON, XLSX) into canonical records.

    Column names are mapped with ``corpora/data/columns.csv`` (e.g. the message-board
    export's 留言详情 → ``text``). Texts are normalised (see :func:`corpora.text.normalise`).
    A row with an empty, binary or over-long text, or a bad time, is reported in
    ``problems`` and left out of ``frame``; the caller decides whether that is fatal.

    Raises
    ------
    AppealDataError
        The file is missing, unreadable, of an unknown type, or has no text column.
    """
    path = Path(path)
    if not path.exists():
        raise AppealDataError(f"{path}: no such file. Check the path.")
    if path.is_dir():
        raise AppealDataError(f"{path}: is a directory; give a data file.")
    if path.suffix.lower() not in SUPPORTED:
        raise AppealDataError(f"{path}: unknown file type '{path.suffix}'; use one of {sorted(SUPPORTED)}.")
    raw = _read_table(path)
    aliases = _column_aliases()
    rename = {}
    for col in raw.columns:
        target = aliases.get(str(col).strip().lower())
        if target and target not in rename.values():
            rename[col] = target
    raw = raw.rename(columns=rename)
    if require_text and "text" not in raw.columns:
        raise AppealDataError(
            f"{path}: no 'text' column (found: {', '.join(map(str, raw.columns[:12])) or 'none'}). "
            "The appeal text must be in a column named 'text' (or 留言详情 / 诉求内容 / content).")
    problems: list[Problem] = []
    records, source_row = [], []
    extra = [c for c in raw.columns if c not in CANONICAL_FIELDS]
    for i, row in enumerate(raw.to_dict("records"), 1):
        rec = {}
        bad = False
        raw_text = row.get("text")
        raw_text = "" if raw_text is None or (isinstance(raw_text, float) and pd.isna(raw_text)) else str(raw_text)
        text, why = check_text(raw_text, max_chars, require_text=require_text)
        if why:
            problems.append(Problem(i, "text", why))
            continue
        rec["text"] = text
        rec["id"] = _clean_id(row.get("id")) or f"row-{i}"
        try:
            rec["time"] = parse_time(row.get("time"))
        except ValueError as err:
            problems.append(Problem(i, "time", str(err)))
            bad = True
        for name in ("title", "district", "user", "channel", "category", "urgency"):
            v = row.get(name)
            v = None if v is None or (isinstance(v, float) and pd.isna(v)) else normalise(v) or None
            rec[name] = v
        if bad:
            continue
        for name in extra:
            rec[name] = row.get(name)
        records.append(rec)
        source_row.append(i)
    frame = pd.DataFrame(records, columns=CANONICAL_FIELDS + extra)
    frame = frame.astype(object).where(frame.notna(), None)
    return ReadResult(frame=frame, problems=problems, rows_read=len(raw), source_row=source_row)


def appeal_texts(frame: pd.DataFrame) -> list[str]:
    """The model input for each record: title and text joined, without a repeated title."""
    titles = frame["title"] if "title" in frame.columns else [None] * len(frame)
    # A frame built elsewhere may hold NaN for a missing value (pandas 3 does for None in a
    # string column), which str() would turn into the text "nan".
    return [join_title(None if pd.isna(t) else t, None if pd.isna(x) else x) for t, x in zip(titles, frame["text"])]
