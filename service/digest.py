"""The weekly risk digest (issue 15): one page for the officials, every number traceable.

For the week of seven days ending on ``week_ending`` it gathers, from what Suqiu already
has — the tags, :class:`models.trends.TrendDetector`'s alerts and seasonal calendar, and
:class:`models.hotspots.HotspotGrouper`'s groups:

* **headline figures**: appeals received, change vs the previous week and vs the same
  week last year (364 days back, weekdays aligned), share critical / urgent, share flagged
  for review;
* **risks that need action**, ranked by the detector's score: spikes, in-season incidents
  (a spike of a seasonal topic while its season runs) and emerging issues, each with its
  daily counts against an expected band, district, 2–3 representative appeals (redacted,
  shortened) and the responsible department (``corpora/data/routing.csv``);
* **未诉先办 — coming up**: seasons that began this week (named as such) and seasonal
  calendar entries due in the next 4 weeks, in plain Chinese;
* **hotspots** of the week (groups of two or more appeals) and a district × category table;
* **critical and urgent appeals** with their "131" deadlines (``corpora/data/sla.csv``);
* **model health**: category mix vs the 8 weeks before, low-confidence share, corrections
  received, model version.

Every figure carries the appeal ids behind it (``ids`` / ``evidence_ids``). A week with no
alert says it is quiet and lists none. Text shown to people goes through
:func:`corpora.text.redact_names` (numbers, addresses and personal names: after 我叫 /
联系人 / 村民 …, 王先生-style forms of address, and the person names jieba's tagger marks).

:func:`build_digest` returns a JSON-serialisable dict; :func:`render` writes it as one
self-contained HTML file (inline SVG charts drawn by matplotlib with glyphs as paths, so
the reader needs no font for them; no JavaScript, no external asset; A4 print and phone
layouts), Markdown or JSON. :func:`digest_from_db` reads the same inputs from the service
database.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from corpora.text import names_in as text_names_in
from corpora.text import normalise, redact_names
from models.trends import _factorize

__all__ = ["build_digest", "digest_from_db", "digest_from_file", "read_input", "render", "scrub_names", "names_in", "FontMissingError", "cjk_font", "FORMATS",
           "SCHEMA"]

log = logging.getLogger(__name__)

SCHEMA = "suqiu.digest/1"
FORMATS = ("html", "md", "json")
CJK_FAMILY = "Noto Sans CJK SC"
HISTORY_DAYS = 3 * 364 + 120   # the detector looks back at most 3 years (same weeks of past years)
TEXT_DAYS = 240                # emerging issues read words of the last 14 + 180 days (+ the previous run)
LOW_CONFIDENCE = 0.5           # a category tag below this confidence counts as low-confidence
CHART_DAYS = 35
GROUP_APART = 2000             # a week of this many appeals is grouped in a second process
RECENT_DAYS = 56               # the appeals looked up by id first (hotspots and alerts' evidence are recent)
MAX_CHARTS = 8
EXCERPT_CHARS = 80
KIND_LABEL = {"spike": "异常上升", "incident": "季节内突发", "seasonal_rise": "季节性上升期激增", "emerging": "新问题",
              "seasonal_onset": "季节性上升"}
URGENCY_LABEL = {"critical": "特急", "urgent": "紧急", "routine": "一般"}


class FontMissingError(RuntimeError):
    """The CJK font the charts need is not installed."""


# --- privacy ---------------------------------------------------------------------------------
def scrub_names(text: str | None) -> str:
    """Personal data and names out of ``text`` (:func:`corpora.text.redact_names`).

    Examples
    --------
    >>> scrub_names("我叫张伟，电话13812345678，联系人：李秀英。王先生说暖气不热")
    '我叫[姓名]，电话[手机号]，联系人：[姓名]。[姓名]说暖气不热'
    """
    return redact_names(text)


def names_in(texts) -> set[str]:
    """The personal names :func:`scrub_names` would remove from ``texts`` (to keep them out
    of keywords drawn from those texts: a group's summary, an emerging issue's name).

    >>> sorted(names_in(["我叫张伟，暖气不热", "王先生反映"]))
    ['张伟', '王先生']
    """
    out = set()
    for t in texts:
        out.update(_names_of(t))
    return out


@lru_cache(maxsize=65536)
def _names_of(text) -> frozenset:
    """:func:`names_in` of one text, once per distinct text (a week's groups share texts)."""
    return frozenset(text_names_in([normalise(text)]))


def _without_names(text: str, names: set[str]) -> str:
    text = scrub_names(text)
    for n in sorted(names, key=len, reverse=True):
        text = text.replace(n, "[姓名]")
    return text


def _summary_of(place, keywords) -> str:
    matter = "、".join(keywords[:3]) or "同类诉求"
    return f"{place}：{matter}" if place else matter


def _excerpt(text: str, n: int = EXCERPT_CHARS) -> str:
    t = scrub_names(normalise(text))
    return t if len(t) <= n else t[: n - 1] + "…"


# --- inputs ----------------------------------------------------------------------------------
def _week_end(week_ending) -> date:
    if isinstance(week_ending, datetime):
        return week_ending.date()
    if isinstance(week_ending, date):
        return week_ending
    try:
        return date.fromisoformat(str(week_ending)[:10])
    except ValueError:
        raise ValueError(f"week_ending must be a date (YYYY-MM-DD), got {str(week_ending)[:30]!r}") from None


def _local_naive(values, zone: str) -> pd.Series:
    """Times as naive wall-clock times on the hotline's clock: an offset is converted, a
    time without one is taken as local already."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
            out.append(pd.NaT)
            continue
        ts = pd.Timestamp(v)
        if ts.tzinfo is not None:
            ts = ts.tz_convert(tz).tz_localize(None)
        out.append(ts)
    return pd.Series(pd.to_datetime(out))


def _prepare(frame: pd.DataFrame, week_end: date, zone: str, memo=None) -> pd.DataFrame:
    for col in ("id", "time", "text"):
        if col not in frame.columns:
            raise ValueError(f"the digest needs columns id, time and text; '{col}' is missing "
                             f"(it has {', '.join(map(str, frame.columns[:12]))})")
    f = frame.copy(deep=False)  # copy-on-write (pandas 3): the columns replaced below are not the caller's
    if "title" in f.columns:
        f["text"] = _joined_texts(f, memo)
    f["id"] = f["id"].astype(str)
    if f["id"].duplicated().any():
        dup = f["id"][f["id"].duplicated()].iloc[0]
        raise ValueError(f"appeal id {dup!r} appears more than once; ids must be unique")
    times = f["time"]
    if not pd.api.types.is_datetime64_any_dtype(times):
        try:  # one vectorised parse when every time is ISO 8601 without an offset (the usual file)
            parsed = pd.to_datetime(times, format="ISO8601")
            times = parsed if getattr(parsed.dt, "tz", None) is None else times
        except (ValueError, TypeError):
            pass
    if not pd.api.types.is_datetime64_any_dtype(times) or getattr(times.dt, "tz", None) is not None:
        times = _local_naive(times.tolist(), zone).set_axis(f.index)
    f["time"] = times
    f = f[f["time"].notna()]
    if f.empty:
        raise ValueError("no appeal has a time: the digest needs a 'time' for each appeal")
    end = pd.Timestamp(week_end) + pd.Timedelta(days=1)
    f = f[(f["time"] < end) & (f["time"] >= end - pd.Timedelta(days=HISTORY_DAYS))]  # no look-ahead
    for col in ("district", "category", "urgency", "user", "model_version"):
        if col in f.columns:
            f[col] = _str_or_none(f[col])
    return f.sort_values("time", kind="stable").reset_index(drop=True)


def _per_distinct(values, fn) -> np.ndarray:
    """``[fn(v) for v in values]`` computing ``fn`` once per distinct value (appeals repeat)."""
    return _map_distinct(*_factorize(values), fn)


def _joined_texts(f: pd.DataFrame, memo=None) -> np.ndarray:
    """:func:`corpora.records.appeal_texts` of ``f``, once per distinct (title, text); a text
    without a title is its normalised self, kept in ``memo`` (:class:`models.trends.TextMemo`)
    when one is given."""
    from corpora.records import appeal_texts

    tc, tu = _factorize(f["title"].to_numpy(dtype=object))
    xc, xu = _factorize(f["text"].to_numpy(dtype=object))
    inv, _ = _factorize(tc.astype(np.int64) * (len(xu) + 1) + xc)  # per row: its distinct (title, text)
    pos = np.empty(int(inv.max(initial=-1)) + 1, dtype=np.int64)
    pos[inv[::-1]] = np.arange(len(inv) - 1, -1, -1)  # the first row of each
    joined = np.empty(len(pos), dtype=object)
    rest = []
    for i, k in enumerate(pos.tolist()):
        title, text = tu[tc[k]], xu[xc[k]]
        if memo is not None and isinstance(text, str) and (title is None or (isinstance(title, float) and np.isnan(title))):
            joined[i] = memo.normalise(text)  # join_title(None, text)
        else:
            rest.append(i)
    if rest:
        for i, v in zip(rest, appeal_texts(f.iloc[pos[rest]][["title", "text"]])):
            joined[i] = v
    return joined[inv]


def _str_or_none(values) -> np.ndarray:
    """Each value if a non-empty string, else None."""
    return _per_distinct(values, lambda v: v if isinstance(v, str) and v else None)


def _has(f: pd.DataFrame, col: str) -> bool:
    return col in f.columns and f[col].notna().any()


# --- reading a file ---------------------------------------------------------------------------
_DIGEST_COLUMNS = ("id", "time", "title", "text", "district", "user", "category", "urgency")
_PASSED = ("needs_review", "confidence", "model_version", "deadlines")  # read as they are, when present
# a time both readers parse at once (pandas reads second 60 as the next minute, pyarrow 30 February as 1 March)
_PLAIN_TIME = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]) ([01]\d|2[0-3]):[0-5]\d:[0-5]\d$"
_EARLIEST, _LATEST = pd.Timestamp("1970-01-01"), pd.Timestamp("2100-01-01")  # as the API's (service.schemas)
_OUT_OF_RANGE = "time must lie between 1970 and 2100"


def read_input(path, *, max_chars: int | None = None) -> pd.DataFrame:
    """The appeals of a file as :func:`corpora.records.read_appeals` reads them (the same
    rows, values and checks; unusable rows logged and left out), for the digest: only the
    columns it uses, each distinct text normalised and checked once, the usual
    ``YYYY-MM-DD HH:MM:SS`` times parsed in one vectorised pass (``time`` comes back as
    datetimes). A CSV or TSV in UTF-8 is read this way; any other file (GBK, JSONL, XLSX,
    one pandas cannot parse) by ``read_appeals`` itself."""
    from corpora.records import DEFAULT_MAX_CHARS

    max_chars = DEFAULT_MAX_CHARS if max_chars is None else max_chars
    path = Path(path)
    got = _fast_read(path, _csv_sep(path), max_chars) if _csv_sep(path) else None
    if got is None:
        return _slow_read(path, max_chars)
    frame, problems, _ = got
    _log_problems(path, problems)
    return frame


def _csv_sep(path: Path) -> str | None:
    """The separator of a CSV / TSV file :func:`_fast_read` may read (None: another kind)."""
    if path.suffix.lower() not in {".csv", ".tsv", ".txt"} or not path.is_file():
        return None
    with open(path, "rb") as fh:
        if b"\x00" in fh.read(65536):
            return None
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _log_problems(path, problems) -> None:
    for p in sorted(problems, key=lambda p: p.row):
        log.warning("%s: %s (reported, not used)", path, p)


def _fast_read(source, sep: str, max_chars: int, *, first_row: int = 1):
    """(frame, problems, data rows read) of a UTF-8 CSV / TSV (a path, or a binary file
    object holding the header line and rows), rows numbered from ``first_row``; None when
    it cannot be read this way and ``read_appeals`` must (another encoding, a malformed
    file, times with an offset). Each row is read on its own: the rows of a file read in
    two parts (:mod:`service.digest_cache`) are the rows of the file read whole.

    A file on disk is parsed by pyarrow's multithreaded reader, each repeated column
    (texts, districts …) as codes into its distinct values, so a million rows of a few
    thousand texts become a few thousand Python strings; a file pyarrow cannot read as pandas
    would (a short row, a header it names otherwise) is read by pandas."""
    from corpora.records import Problem, _column_aliases, check_text, parse_time

    def csv(**kw):
        if hasattr(source, "seek"):
            source.seek(0)
        return pd.read_csv(source, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig", **kw)

    try:
        header = csv(nrows=0).columns
        aliases, rename = _column_aliases(), {}
        for col in header:
            target = aliases.get(str(col).strip().lower())
            if target and target not in rename.values():
                rename[col] = target
        wanted = {c: rename.get(c, c) for c in header if rename.get(c, c) in _DIGEST_COLUMNS + _PASSED}
        if "text" not in wanted.values():
            return None
        raw = _ArrowColumns.read(source, sep, wanted) if isinstance(source, Path) else None
        if raw is None:
            raw = _PandasColumns(csv(usecols=list(wanted)).rename(columns=wanted))
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError):
        return None  # read_appeals says what is wrong, or reads GBK
    n = raw.n
    row = np.arange(first_row, first_row + n)
    problems: dict[int, Problem] = {}

    codes, distinct = raw.distinct("text")
    checked = [check_text(t, max_chars) for t in distinct]
    texts = np.empty(len(checked), dtype=object)
    texts[:] = [c[0] for c in checked]
    texts = texts[codes]
    ok = texts != None  # noqa: E711
    for i in np.flatnonzero(~ok):
        problems[int(row[i])] = Problem(int(row[i]), "text", checked[codes[i]][1])
    times = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    if "time" in raw:
        plain_times, rest = raw.plain_times()
        times[:] = plain_times
        parsed: dict = {}
        rest_values = raw.values("time", rest)
        for i, v in zip(rest.tolist(), rest_values):
            if not ok[i]:
                continue
            if v not in parsed:
                try:
                    iso = parse_time(v)
                    parsed[v] = None if iso is None else pd.Timestamp(iso)
                except ValueError as err:
                    parsed[v] = err
            got = parsed[v]
            if isinstance(got, ValueError):
                problems[int(row[i])] = Problem(int(row[i]), "time", str(got))
                ok[i] = False
            elif got is not None:
                if got.tzinfo is not None:  # times with an offset: as read_appeals gives them, for the digest
                    return None
                if _EARLIEST <= got < _LATEST:
                    times[i] = got.to_datetime64()
                else:
                    problems[int(row[i])] = Problem(int(row[i]), "time", _OUT_OF_RANGE)
                    ok[i] = False
    out = pd.DataFrame(index=pd.RangeIndex(n))
    if "id" in raw:
        out["id"] = raw.ids(row)
    else:
        out["id"] = [f"row-{i}" for i in row]
    out["time"] = times
    for name in ("title", "district", "user", "category", "urgency"):
        if name in raw:
            out[name] = _map_distinct(*raw.distinct(name), lambda v: None if v is None else normalise(v) or None)
    if "title" not in out.columns:
        out["title"] = None  # as read_appeals: the digest joins (re-normalises) title and text
    out["text"] = texts
    for name in _PASSED:
        if name in raw:
            out[name] = raw.values(name)
    return out[ok].reset_index(drop=True), list(problems.values()), n


def _map_distinct(codes: np.ndarray, uniques, fn) -> np.ndarray:
    """``fn`` of each value given as codes into its distinct values, once per distinct value."""
    out = np.empty(len(uniques), dtype=object)
    for i, v in enumerate(uniques):
        out[i] = fn(v)
    return out[codes]


class _PandasColumns:
    """The string columns of a CSV as pandas read them (``dtype=str``, no NA values)."""

    def __init__(self, frame: pd.DataFrame):
        self.frame, self.n = frame, len(frame)

    def __contains__(self, name) -> bool:
        return name in self.frame.columns

    def values(self, name, at=None) -> np.ndarray:
        v = self.frame[name].to_numpy(dtype=object)
        return v if at is None else v[at]

    def distinct(self, name):
        return _factorize(self.values(name))

    def plain_times(self):
        """(times parsed where they are ``YYYY-MM-DD HH:MM:SS`` after stripping, NaT elsewhere;
        the positions of the others)."""
        t = self.frame["time"].str.strip()
        plain = np.flatnonzero(t.str.fullmatch(_PLAIN_TIME).fillna(False).to_numpy(dtype=bool))
        got = pd.to_datetime(t.iloc[plain], format="%Y-%m-%d %H:%M:%S", errors="coerce").to_numpy()
        near = (got >= _EARLIEST.to_datetime64()) & (got < _LATEST.to_datetime64())  # the others: as the rest
        times = np.full(self.n, np.datetime64("NaT"), dtype="datetime64[ns]")
        times[plain[near]] = got[near]
        return times, np.flatnonzero(np.isnat(times))

    def ids(self, row) -> np.ndarray:  # corpora.records._clean_id, vectorised
        ids = self.frame["id"].str.strip()
        ids = ids.where(~ids.str.fullmatch(r"\d+\.0"), ids.str[:-2])
        bad = (ids == "") | (ids.str.lower() == "nan")
        return ids.where(~bad, pd.Series([f"row-{i}" for i in row], index=ids.index)).to_numpy(dtype=object)


def _arrow_pool():
    """pyarrow's memory pool for the read: the system allocator. With pyarrow's default
    (mimalloc) this machine spent 1.5–3 s more in the kernel on a 1.2 GB file
    (``python -m training.bench_digest --compare-readers``)."""
    import pyarrow as pa

    return pa.system_memory_pool()


class _ArrowColumns:
    """The same columns parsed by pyarrow (``pyarrow.csv``: C++ on every core), with the
    same results as :class:`_PandasColumns`."""

    def __init__(self, table):
        self.table, self.n = table, table.num_rows

    @classmethod
    def read(cls, path: Path, sep: str, wanted: dict):
        """The ``wanted`` columns (file's name: name in the digest) of ``path``; None when
        pyarrow is absent or would not read the file as pandas does (the caller reads it
        with pandas, which says what is wrong if anything is). Of two columns of one name,
        both take the first."""
        try:
            import pyarrow as pa
            import pyarrow.csv as pacsv
        except ImportError:
            return None
        try:
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(use_threads=True), memory_pool=_arrow_pool(),
                parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in wanted}, include_columns=list(wanted),
                    strings_can_be_null=False, quoted_strings_can_be_null=False))
        except (pa.ArrowException, OSError):
            return None
        if table.column_names != list(wanted) or table.num_rows == 0:
            return None
        return cls(table.rename_columns([wanted[c] for c in table.column_names]))

    def __contains__(self, name) -> bool:
        return name in self.table.column_names

    def values(self, name, at=None) -> np.ndarray:
        col = self.table[name]
        if at is not None:
            col = col.take(at)
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)

    def distinct(self, name):
        import pyarrow.compute as pc

        enc = pc.dictionary_encode(self.table[name]).combine_chunks()
        return enc.indices.to_numpy(zero_copy_only=False), enc.dictionary.to_pylist()

    def plain_times(self):
        import pyarrow as pa
        import pyarrow.compute as pc

        t = pc.utf8_trim_whitespace(self.table["time"])
        got = pc.strptime(t, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True)
        # taken when every field is in range, the day too (pyarrow reads 30 February as 1
        # March), between 1970 and 2100; the others are read as the rest
        keep = pc.and_(pc.and_(pc.match_substring_regex(t, _PLAIN_TIME),
                               pc.equal(pc.utf8_lpad(pc.cast(pc.day(got), pa.string()), 2, "0"),
                                        pc.utf8_slice_codeunits(t, 8, 10))),
                       pc.and_(pc.greater_equal(got, pa.scalar(_EARLIEST.to_pydatetime(), pa.timestamp("s"))),
                               pc.less(got, pa.scalar(_LATEST.to_pydatetime(), pa.timestamp("s")))))
        got = pc.if_else(pc.fill_null(keep, False), got, pa.scalar(None, pa.timestamp("s")))
        times = got.combine_chunks().to_numpy(zero_copy_only=False).astype("datetime64[ns]")
        return times, np.flatnonzero(np.isnat(times))

    def ids(self, row) -> np.ndarray:
        import pyarrow.compute as pc

        ids = pc.utf8_trim_whitespace(self.table["id"])
        ids = pc.if_else(pc.match_substring_regex(ids, r"^\p{Nd}+\.0$"), pc.utf8_slice_codeunits(ids, 0, -2), ids)
        out = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)
        bad = pc.or_(pc.equal(ids, ""), pc.equal(pc.utf8_lower(ids), "nan")).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(bad):
            out[i] = f"row-{row[i]}"
        return out


def _slow_read(path, max_chars):
    from corpora.records import read_appeals

    res = read_appeals(path, max_chars=max_chars)
    for p in res.problems:
        log.warning("%s: %s (reported, not used)", path, p)
    return res.frame


def digest_from_file(path, week_ending, *, tagger=None, max_chars: int | None = None, progress: bool = False,
                     cache: bool | Path = True) -> dict:
    """:func:`build_digest` of the appeals in ``path`` (read by :func:`read_input`).

    ``cache``: keep what the next week's digest of this file can reuse
    (:mod:`service.digest_cache`) in ``var/digest_cache`` (True), in the given directory,
    or nowhere (False). The digest is the same either way."""
    from corpora.records import DEFAULT_MAX_CHARS
    from service.digest_cache import FileHistory

    max_chars = DEFAULT_MAX_CHARS if max_chars is None else max_chars
    history = FileHistory(Path(path), max_chars, cache_dir=_cache_dir(cache))
    frame, memo = history.read()
    if frame.empty:
        raise ValueError(f"{path}: no usable appeals in the input file.")
    if frame["time"].isna().all():
        raise ValueError(f"{path}: no appeal has a time; the digest needs a 'time' column")
    out = _build(frame, week_ending, tagger=tagger, progress=progress, memo=memo)
    history.save(frame, memo)
    return out


def _cache_dir(cache) -> Path | None:
    from service.digest_cache import default_dir

    if cache is True:
        return default_dir()
    return Path(cache) if cache else None


# --- the detector on the history it needs ----------------------------------------------------
def _fit_detector(f: pd.DataFrame, week_end: date, memo=None):
    """The detector on the history: counts, seasons and calendar from all of it, words (for
    emerging issues) only from the last TEXT_DAYS days, the most its emerging-issue tests
    as of ``week_end`` read (``terms_since``): years of history are not segmented. ``memo``
    (:class:`models.trends.TextMemo`) keeps the per-text work for the next run: what this
    history holds."""
    from models.trends import TrendDetector

    cols = [c for c in ("id", "time", "text", "district", "category", "user") if c in f.columns]
    last = min(week_end, f["time"].max().date())  # detect() answers as of the last day with data
    det = TrendDetector().fit(f[cols], terms_since=last - timedelta(days=TEXT_DAYS), memo=memo)
    if memo is not None:
        memo.keep(f["text"].to_numpy(dtype=object))
    return det


class _Grouping:
    """The week's hotspots grouped in a forked process, beside this one's work.

    The grouping itself is one sequential pass, but the features of each distinct text
    (places, words, signature: most of its time) are not: this process computes a share of
    them (:meth:`help`, when it would otherwise wait) and sends them over a pipe; the
    grouping process computes the rest, takes them and groups. The groups are those of
    :func:`_group_week` in this process."""

    def __init__(self, week: pd.DataFrame, share: float = 0.35):
        import multiprocessing as mp

        from models.hotspots import _warm_up

        _warm_up()  # loaded once, shared by both processes
        self.week = week[[c for c in _GROUP_COLUMNS if c in week.columns]]
        texts = list(dict.fromkeys(self.week["text"].tolist()))
        k = int(len(texts) * share)
        self.mine = set(texts[len(texts) - k:])  # the last distinct texts: the process starts with the first
        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_group_child, args=(child, self.week, self.mine), daemon=True)
        self._proc.start()
        child.close()
        self._helped = False
        self._sender = None
        self._result = None

    def help(self) -> None:
        """Compute this process's share of the text features and send it."""
        if self._helped:
            return
        self._helped = True
        from models.hotspots import HotspotGrouper

        rows = self.week[self.week["text"].isin(self.mine)]
        memo = HotspotGrouper()._features_of(rows["text"].tolist(),
                                             rows["district"].tolist() if "district" in rows else [None] * len(rows))
        # sent from a thread: the write waits until the other process reads, this one goes on
        self._sender = threading.Thread(target=self._send, args=(memo,), daemon=True)
        self._sender.start()

    def _send(self, memo) -> None:
        try:
            self._conn.send(memo)
        except (OSError, ValueError):
            pass  # the grouping process is gone; result() says why

    def done(self) -> bool:
        return self._result is not None or self._conn.poll()

    def result(self) -> list[dict]:
        self.help()
        if self._result is None:
            try:
                self._result = self._conn.recv()
            except EOFError:
                self._result = ("error", RuntimeError("the hotspot grouping process ended without an answer"))
            self.shutdown()
        kind, value = self._result
        if kind == "error":
            raise value
        return value

    def shutdown(self) -> None:
        if self._sender is not None:
            self._sender.join(timeout=5)
        self._conn.close()
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


_GROUP_COLUMNS = ("id", "time", "text", "district", "user", "urgency")


def _group_child(conn, week: pd.DataFrame, theirs: set) -> None:
    """The grouping process of :class:`_Grouping`."""
    from models.hotspots import HotspotGrouper

    try:
        g = HotspotGrouper()
        rows = week[~week["text"].isin(theirs)]
        memo = g._features_of(rows["text"].tolist(),
                              rows["district"].tolist() if "district" in rows else [None] * len(rows))
        memo.update(conn.recv())
        g.add_frame(week, progress=False, _memo=memo)
        conn.send(("ok", g.groups(min_size=2)))
    except BaseException as err:  # noqa: BLE001 (handed to the parent, which raises it)
        try:
            conn.send(("error", err))
        except (OSError, ValueError):
            pass  # the parent gave up on the grouping (it failed first)
    finally:
        conn.close()


def _group_apart(week: pd.DataFrame):
    """A :class:`_Grouping` of ``week``, or None when no process can be started."""
    try:
        return _Grouping(week)
    except (OSError, ValueError):
        return None


def _group_week(week: pd.DataFrame) -> list[dict]:
    from models.hotspots import HotspotGrouper

    cols = [c for c in _GROUP_COLUMNS if c in week.columns]
    g = HotspotGrouper()
    g.add_frame(week[cols], progress=False)  # times as datetimes: the grouper reads them as their ISO strings
    return g.groups(min_size=2)


# --- the digest ------------------------------------------------------------------------------
def build_digest(frame: pd.DataFrame, week_ending, *, tagger=None, progress: bool = False) -> dict:
    """The digest of the week ending on ``week_ending`` (that day and the six before).

    Parameters
    ----------
    frame : DataFrame
        Appeals with ``id, time, text`` and, where known, ``district, category, user,
        urgency, needs_review, confidence, model_version`` (and ``deadlines``, ``title``).
        History before the week feeds the expected levels and the seasonal calendar;
        appeals after ``week_ending`` are ignored.
    week_ending : date or str
    tagger : models.tagger.Tagger, optional
        Tags categories when the frame has none, and urgency, confidence and deadlines of
        the week's appeals when it has no urgency.
    progress : bool
        Log each stage (stderr through logging).

    Returns
    -------
    dict
        JSON-serialisable; see the module docstring. ``quiet`` is true when no risk and no
        seasonal rise was found.
    """
    return _build(frame, week_ending, tagger=tagger, progress=progress)


def _build(frame, week_ending, *, tagger=None, progress=False, corrections=None, groups=None,
           source="file", zone=None, memo=None, future=None) -> dict:
    import time as clock

    from service.config import Settings

    started = clock.perf_counter()
    week_end = _week_end(week_ending)
    week_start = week_end - timedelta(days=6)
    zone = zone or Settings().timezone

    def stage(name):
        if progress:
            log.info("digest %s: %s (%.1f s)", week_end, name, clock.perf_counter() - started)

    stage("reading appeals")
    # Hotspots of the week, grouped beside the rest on a second core when the week is big:
    # started from the week's rows alone when the frame's times are read already.
    if future is None and groups is None and tagger is None and "time" in frame.columns \
            and pd.api.types.is_datetime64_dtype(frame["time"].dtype) and frame["time"].dt.tz is None:
        at = (frame["time"] >= pd.Timestamp(week_start)) & (frame["time"] < pd.Timestamp(week_end + timedelta(days=1)))
        if at.sum() >= GROUP_APART:
            try:  # the week's rows prepared alone are the week's rows of the whole frame prepared
                future = _group_apart(_prepare(frame[at], week_end, zone, memo))
                if future is not None:
                    future.help()
            except ValueError:
                pass  # (the whole frame's preparation says what is wrong)
    try:
        f = _prepare(frame, week_end, zone, memo)
        f["day"] = f["time"].dt.normalize()
        in_week = (f["day"] >= pd.Timestamp(week_start)).to_numpy()
        versions: list[str] = []
        if tagger is not None:
            if not _has(f, "category"):
                stage(f"tagging categories of {len(f):,} appeals")
                f["category"] = [str(c) for c in tagger.category.predict(f["text"].tolist())]
            if not _has(f, "urgency") and in_week.any():
                stage(f"tagging the week's {int(in_week.sum()):,} appeals")
                idx = np.flatnonzero(in_week)
                tags = []
                texts = f["text"].to_numpy()[idx].tolist()
                times = [t.isoformat() for t in f["time"].to_numpy()[idx].astype("datetime64[s]").tolist()]
                for s in range(0, len(idx), 1000):
                    tags += tagger.tag(texts[s:s + 1000], received_at=times[s:s + 1000])
                for col in ("urgency", "needs_review", "confidence", "model_version", "deadlines"):
                    f[col] = None
                    f[col] = f[col].astype(object)
                    f.loc[idx, col] = pd.Series([t.get(col) for t in tags], index=idx, dtype=object)
            versions = [tagger.version]
        week = f[in_week]
        stage(f"{len(week):,} appeals in the week, {len(f):,} with history")

        if groups is None and future is None and len(week) >= GROUP_APART:
            future = _group_apart(week)
            if future is not None:
                future.help()
        stage("fitting early warning")
        det = _fit_detector(f, week_end, memo) if len(f) else None
        alerts = det.detect(week_end.isoformat(), since_days=7) if det is not None else []
        cal = det.calendar(week_end.isoformat(), weeks=4) if det is not None else {"entries": []}

        stage("writing the digest")
        ctx = _Context(f, week, det, week_start, week_end)
        risks = ctx.risks(alerts, cal)
        onsets = [a for a in alerts if a["kind"] == "seasonal_onset"]
        coming = ctx.coming_up(cal, onsets)
        headline = ctx.headline()
        if det is not None:  # appeals a day over the last weeks against the expected band, this week in red
            t_end = min(det._day(week_end.isoformat()), det.counts_.shape[1] - 1)
            headline["daily"] = ctx._chart(det.total_[:t_end + 1], (week_start.isoformat(), week_end.isoformat()))
        heat = ctx.heat_table()
        crit = ctx.critical(zone)
        health = ctx.model_health(versions, corrections)
        if groups is None:
            if future is not None:
                # this core would wait for the hotspots: the HTML's charts and the names in the
                # week's texts (kept out of group summaries) meanwhile
                _draw_ahead(headline, risks, until=future.done)
                for text in pd.unique(week["text"].to_numpy(dtype=object)):
                    if future.done():
                        break
                    _names_of(text)
                stage("grouping hotspots")
                groups = future.result()
            else:
                stage("grouping hotspots")
                groups = _group_week(week) if len(week) else []
        hot = ctx.hotspots(groups)
        quiet = not risks and not onsets
        summary = ctx.summary(headline, risks, coming, hot, quiet)
        return {
            "schema": SCHEMA,
            "week_start": week_start.isoformat(), "week_ending": week_end.isoformat(),
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": source, "timezone": zone,
            "history": {"first_day": f["day"].min().date().isoformat() if len(f) else None, "appeals": int(len(f))},
            "quiet": quiet, "summary": summary,
            "headline": headline, "risks": risks, "coming_up": coming, "hotspots": hot,
            "heat_table": heat, "critical_urgent": crit, "model_health": health,
            "seconds": round(clock.perf_counter() - started, 2),
        }
    except BaseException:
        if future is not None:  # the grouping process is not left behind
            future.shutdown()
        raise


def _ids(s) -> list[str]:
    return [str(x) for x in s]


def _pct(a: int, b: int) -> float | None:
    return round(100.0 * (a - b) / b, 1) if b else None


def _xun(mmdd: str) -> str:
    m, d = (int(x) for x in mmdd.split("-"))
    return f"{m}月{'上' if d <= 10 else '中' if d <= 20 else '下'}旬"


class _Context:
    """The week, its history and the fitted detector; one method per section."""

    def __init__(self, f, week, det, week_start, week_end):
        self.f, self.week, self.det = f, week, det
        self.week_start, self.week_end = week_start, week_end
        self._at = None
        self._text = None
        self.series_index = {(s.kind, s.name, s.district): j for j, s in enumerate(det.series_)} if det else {}

    # -- headline
    def _span(self, end: date, days: int = 7):
        lo, hi = pd.Timestamp(end - timedelta(days=days - 1)), pd.Timestamp(end)
        return self.f[(self.f["day"] >= lo) & (self.f["day"] <= hi)]

    def headline(self) -> dict:
        w = self.week
        prev = self._span(self.week_start - timedelta(days=1))
        ly_end = self.week_end - timedelta(days=364)
        ly = self._span(ly_end)
        has_ly = len(self.f) and self.f["day"].min() <= pd.Timestamp(ly_end - timedelta(days=6))
        out = {
            "received": {"value": len(w), "ids": _ids(w["id"])},
            "previous_week": {"value": len(prev), "change_pct": _pct(len(w), len(prev)),
                              "week_start": (self.week_start - timedelta(days=7)).isoformat(),
                              "week_ending": (self.week_start - timedelta(days=1)).isoformat(), "ids": _ids(prev["id"])},
            "same_week_last_year": ({"value": len(ly), "change_pct": _pct(len(w), len(ly)),
                                     "week_start": (ly_end - timedelta(days=6)).isoformat(),
                                     "week_ending": ly_end.isoformat(), "ids": _ids(ly["id"])}
                                    if has_ly else None),
        }
        graded = w[w["urgency"].notna()] if _has(w, "urgency") else None
        for level in ("critical", "urgent"):
            if graded is None:  # no urgency in the input and no model to grade it
                out[level] = {"value": None, "of": 0, "share": None, "ids": []}
                continue
            sel = graded[graded["urgency"] == level]
            out[level] = {"value": len(sel), "of": len(graded),
                          "share": round(len(sel) / len(graded), 4) if len(graded) else None, "ids": _ids(sel["id"])}
        if "needs_review" in w.columns and w["needs_review"].notna().any():
            known = w[w["needs_review"].notna()]
            sel = known[known["needs_review"].astype(bool)]
            out["needs_review"] = {"value": len(sel), "of": len(known), "share": round(len(sel) / len(known), 4),
                                   "ids": _ids(sel["id"])}
        else:
            out["needs_review"] = {"value": None, "of": 0, "share": None, "ids": []}
        return out

    # -- risks
    def _positions(self, ids) -> np.ndarray:
        """Rows of appeals ``ids`` (ids are unique): looked up among the last weeks' appeals,
        which every id asked for belongs to (hotspots of the week, evidence of alerts of the
        last two weeks), and among all only when one is not there."""
        ids = [str(i) for i in ids]
        if self._at is None:
            first = int(np.searchsorted(self.f["time"].to_numpy(),
                                        np.datetime64(self.week_start - timedelta(days=RECENT_DAYS)), side="left"))
            self._at = dict(zip(self.f["id"].iloc[first:].tolist(), range(first, len(self.f))))
        at = np.array([self._at.get(i, -1) for i in ids], dtype=np.int64)
        if (at < 0).any() and len(self._at) < len(self.f):
            self._at = dict(zip(self.f["id"].tolist(), range(len(self.f))))
            at = np.array([self._at.get(i, -1) for i in ids], dtype=np.int64)
        return at[at >= 0]

    def _rows(self, ids) -> pd.DataFrame:
        return self.f.iloc[self._positions(ids)]

    def _texts(self, ids) -> np.ndarray:
        """The texts of appeals ``ids`` (without building a frame of their rows: one per group)."""
        if self._text is None:
            self._text = self.f["text"].to_numpy(dtype=object)
        return self._text[self._positions(ids)]

    def _department(self, rows: pd.DataFrame, topic: str | None) -> str | None:
        from corpora.rules import default_router
        from corpora.topics import default_topics

        router = default_router()
        fallback = default_topics().by_name[topic].category if topic in default_topics().by_name else None
        cats = rows["category"] if "category" in rows.columns else pd.Series([None] * len(rows), index=rows.index)
        depts = Counter()
        for cat, text in zip(cats, rows["text"]):
            cat = cat if isinstance(cat, str) and cat else fallback
            if cat:
                dept, _ = router.route(cat, text)
                if dept:
                    depts[dept] += 1
        return depts.most_common(1)[0][0] if depts else None

    def _examples(self, rows: pd.DataFrame, district: str | None, k: int = 3) -> list[dict]:
        if district and "district" in rows.columns:
            rows = pd.concat([rows[rows["district"] == district], rows[rows["district"] != district]])
        seen, picked = set(), []
        for r in rows.itertuples(index=False):
            key = normalise(r.text)[:40]
            if key in seen:
                continue
            seen.add(key)
            picked.append({"id": str(r.id), "time": r.time.isoformat(timespec="minutes"),
                           "district": getattr(r, "district", None), "text": _excerpt(r.text)})
            if len(picked) == k:
                break
        return picked

    def _chart(self, counts: np.ndarray, window: tuple[str, str] | None, flat_expected: float | None = None) -> dict:
        """Daily counts of the last CHART_DAYS days and the expected band: the mean of the four
        weeks before (a week's lag, so a rise does not raise its own bar), Poisson 95%."""
        from scipy import stats

        t = len(counts) - 1
        days = [(self.week_end - timedelta(days=CHART_DAYS - 1 - i)).isoformat() for i in range(CHART_DAYS)]
        obs, exp = [], []
        for i in range(CHART_DAYS):
            d = t - (CHART_DAYS - 1 - i)
            obs.append(int(counts[d]) if d >= 0 else 0)
            if flat_expected is not None:
                exp.append(flat_expected)
            else:
                past = counts[max(0, d - 35):max(0, d - 7)]
                exp.append(float(past.mean()) if len(past) else 0.0)
        exp = np.array(exp)
        return {"days": days, "counts": obs, "expected": [round(x, 2) for x in exp],
                "lower": [int(x) for x in stats.poisson.ppf(0.025, np.maximum(exp, 1e-9))],
                "upper": [int(x) for x in stats.poisson.ppf(0.975, np.maximum(exp, 1e-9))],
                "window": list(window) if window else None}

    def _season_of(self, cal, topic, district, start: str) -> str | None:
        """The onset of the season of ``topic`` × ``district`` running on ``start``, if any."""
        for e in cal["entries"]:
            if e["topic"] != topic or e["district"] != district:
                continue
            for s in e["seasons"]:
                if s["onset"] <= start and (date.fromisoformat(s["end"]) + timedelta(days=7)).isoformat() >= start:
                    return s["onset"]
        return None

    def risks(self, alerts, cal) -> list[dict]:
        from corpora.topics import default_topics

        seasonal = {t.name for t in default_topics().topics if t.seasonal}
        det, out = self.det, []
        n_days = det.counts_.shape[1] if det is not None else 0
        t_end = det._day(self.week_end.isoformat()) if det is not None else 0
        for a in alerts:
            if a["kind"] not in ("spike", "emerging"):
                continue
            kind = a["kind"]
            onset = self._season_of(cal, a["topic"], a["district"], a["window_start"]) if (
                kind == "spike" and a["topic"] in seasonal) else None
            if onset is not None:
                # Two weeks into a season a surge is an incident on top of it; before, the rise itself.
                early = date.fromisoformat(a["window_start"]) - date.fromisoformat(onset) < timedelta(days=14)
                kind = "seasonal_rise" if early else "incident"
            rows = self._rows(a["evidence_ids"])
            if kind == "emerging":
                days = np.zeros(max(t_end + 1, 1))
                d = (rows["day"] - pd.Timestamp(det.day0_)).dt.days.to_numpy()
                np.add.at(days, d[(d >= 0) & (d <= t_end)], 1)
                chart = self._chart(days, (a["window_start"], a["window_end"]),
                                    flat_expected=float(a["expected"]) / 14)
            else:
                key = ("topic", a["topic"], a["district"]) if a["topic"] else ("category", a["category"], a["district"])
                j = self.series_index.get(key)
                counts = det.counts_[j, :min(t_end, n_days - 1) + 1] if j is not None else np.zeros(1)
                chart = self._chart(counts, (a["window_start"], a["window_end"]))
            name = a["topic"] if kind != "emerging" else a["topic"].removeprefix("新问题：")
            names = names_in(rows["text"]) if kind == "emerging" else set()
            out.append({
                "kind": kind, "kind_label": KIND_LABEL[kind],
                "title": _without_names(f"{a['district'] or '全市'}「{name or a['category']}」", names),
                "topic": a["topic"], "category": a["category"], "district": a["district"],
                "window_start": a["window_start"], "window_end": a["window_end"],
                "observed": a["observed"], "expected": a["expected"], "score": a["score"],
                "summary": _without_names(a["summary"], names),
                "department": self._department(rows, a["topic"]),
                "examples": self._examples(rows.sort_values("time", ascending=False), a["district"]),
                "evidence_ids": [str(i) for i in a["evidence_ids"]],
                "group_id": a.get("group_id"),
                "chart": chart,
            })
        out.sort(key=lambda r: (-r["score"], r["title"]))
        for i, r in enumerate(out, 1):
            r["rank"] = i
        return out

    # -- 未诉先办
    def _season_evidence(self, entry, limit=30) -> list[str]:
        det, j = self.det, entry["_series"]
        runs = entry["_runs"]
        if not runs:
            return []
        a = runs[-1]["_onset_idx"]
        docs = det.member_[j].indices
        docs = docs[(det.doc_day_[docs] >= a) & (det.doc_day_[docs] <= a + 13)]
        return det.ids_[np.sort(docs)[:limit]].tolist()

    def coming_up(self, cal, onsets) -> list[dict]:
        by_topic: dict[str, list] = {}
        for e in cal["entries"]:
            by_topic.setdefault(e["topic"], []).append(e)
        rising: dict[str, list] = {}
        for a in onsets:
            rising.setdefault(a["topic"], []).append(a)
        out = []
        for topic in sorted(set(by_topic) | set(rising), key=lambda x: (x not in rising, x)):
            entries = by_topic.get(topic, [])
            city = next((e for e in entries if e["district"] is None), None)
            dists = [e for e in entries if e["district"] is not None]
            ref = city or (max(entries, key=lambda e: e["n_seasons"]) if entries else None)
            peak = None
            if dists:
                best = max(dists, key=lambda e: np.median([s["peak_7day_count"] for s in e["seasons"]]))
                peak = best["district"]
            history = ""
            before = (self.week_start - timedelta(days=90)).isoformat()  # seasons of earlier years, not this one
            past = [x for x in ref["seasons"] if x["onset"] < before] if ref else []
            if past:  # seasons before this week: this year's rise is not its own precedent
                n = len(past)
                md = sorted(x["onset"][5:] for x in past)[len(past) // 2]
                years = {1: "去年", 2: "近两年", 3: "近三年"}.get(n, f"近{n}年")
                if ref["anchor"] != "日历":
                    off = ref["anchor_offset_days"] or 0
                    when = f"{ref['anchor']}{'前' if off < 0 else '后'}{abs(off)}天前后" if off else f"{ref['anchor']}前后"
                else:
                    when = _xun(md)
                history = f"{years}均在{when}开始上升" if n > 1 else f"往年在{when}开始上升"
                if peak:
                    history += f"，{peak}峰值最高"
            if topic in rising:
                alerts = sorted(rising[topic], key=lambda a: -a["observed"])
                where = "、".join(f"{a['district'] or '全市'}（近7天{a['observed']}件）" for a in alerts[:6])
                sentence = f"{topic}：本周已开始季节性上升——{where}" + (f"；{history}" if history else "") + "。"
                ids = list(dict.fromkeys(i for a in alerts for i in a["evidence_ids"]))
                out.append({"topic": topic, "status": "rising", "sentence": scrub_names(sentence),
                            "next_onset": None, "districts": [a["district"] for a in alerts],
                            "evidence_ids": [str(i) for i in ids]})
                continue
            due = [e for e in entries if e["due_within_weeks"]
                   and date.fromisoformat(e["next_onset"]) > self.week_end
                   and date.fromisoformat(e["next_onset"]) <= self.week_end + timedelta(weeks=4)]
            if not due:
                continue
            first = min(due, key=lambda e: e["next_onset"])
            nxt = date.fromisoformat((city if city in due else first)["next_onset"])
            spread = (city if city in due else first)["onset_spread_days"]
            sentence = (f"{topic}：{history + '；' if history else ''}预计{nxt.month}月{nxt.day}日前后开始"
                        + (f"（往年波动约±{spread:.0f}天）" if ref["n_seasons"] > 1 else "") + "，请相关部门提前准备。")
            out.append({"topic": topic, "status": "due", "sentence": scrub_names(sentence),
                        "next_onset": nxt.isoformat(),
                        "districts": [e["district"] for e in due if e["district"]],
                        "evidence_ids": [str(i) for i in self._season_evidence(ref)]})
        return out

    # -- hotspots and the heat table
    def hotspots(self, groups, k: int = 15) -> dict:
        gs = sorted(groups, key=lambda g: (-g["heat"], g["group_id"]))
        items = []
        for g in gs[:k]:  # the k shown; of the others, their sizes and ids
            # Keywords come from the members' words: a name their senders wrote is never one.
            names = names_in(self._texts(g["appeal_ids"]))
            keywords = [k for k in g.get("keywords") or [] if not any(k in n or n in k for n in names)]
            summary = (_summary_of(g.get("place"), keywords) if g.get("keywords") is not None
                       else _without_names(g["summary"], names))
            items.append(self._group_item(g, summary, names))
        return {"groups": items, "total_groups": len(gs),
                "appeals_in_groups": sum(g["size"] for g in gs),
                "ids": [str(i) for g in gs for i in g["appeal_ids"]]}

    @staticmethod
    def _group_item(g, summary, names) -> dict:
        return {"group_id": g["group_id"], "size": g["size"], "people": g["people"],
                  "place": _without_names(g["place"], names) if g.get("place") else None,
                  "summary": _without_names(summary, names), "heat": g["heat"],
                  "districts": g.get("districts", []),
                  "first_time": g.get("first_time"), "last_time": g.get("last_time"),
                  "ids": [str(i) for i in g["appeal_ids"]]}

    def heat_table(self) -> dict:
        w = self.week
        dist = w["district"].fillna("（未注明）") if "district" in w.columns else pd.Series(["（未注明）"] * len(w),
                                                                                        index=w.index)
        cat = w["category"].fillna("（未分类）") if "category" in w.columns else pd.Series(["（未分类）"] * len(w),
                                                                                      index=w.index)
        districts = [d for d, _ in Counter(dist).most_common()]
        categories = [c for c, _ in Counter(cat).most_common()]
        cells = {}
        for (d, c), ids in w.groupby([dist, cat])["id"]:
            cells.setdefault(d, {})[c] = {"value": len(ids), "ids": _ids(ids)}
        return {"districts": districts, "categories": categories, "cells": cells,
                "max": max((x["value"] for row in cells.values() for x in row.values()), default=0)}

    # -- critical and urgent
    def critical(self, zone: str) -> dict:
        from models.urgency import load_sla

        w = self.week
        if not _has(w, "urgency"):
            return {"available": False, "items": [], "ids": []}
        sel = w[w["urgency"].isin(["critical", "urgent"])]
        sla = load_sla()
        items = []
        order = sel.assign(_r=sel["urgency"].map({"critical": 0, "urgent": 1})).sort_values(["_r", "time"])
        for r in order.itertuples(index=False):
            dl = getattr(r, "deadlines", None)
            if not isinstance(dl, dict) or "finish_by" not in dl:
                dl = sla.deadlines(r.urgency, r.time.to_pydatetime())
            items.append({"id": str(r.id), "urgency": r.urgency, "urgency_label": URGENCY_LABEL[r.urgency],
                          "time": r.time.isoformat(timespec="minutes"),
                          "district": getattr(r, "district", None), "category": getattr(r, "category", None),
                          "text": _excerpt(r.text, 60),
                          "contact_by": str(dl.get("contact_by", ""))[:16],
                          "finish_by": str(dl.get("finish_by", ""))[:16],
                          "report_back_by": str(dl.get("report_back_by", ""))[:16]})
        return {"available": True, "items": items, "ids": [x["id"] for x in items]}

    # -- model health
    def model_health(self, versions: list[str], corrections) -> dict:
        w, f = self.week, self.f
        out: dict = {}
        usual = f[(f["day"] < pd.Timestamp(self.week_start))
                  & (f["day"] >= pd.Timestamp(self.week_start - timedelta(weeks=8)))]
        if _has(w, "category"):
            now, before = Counter(w["category"].dropna()), Counter(usual["category"].dropna()) if _has(usual, "category") else Counter()
            n_now, n_before = sum(now.values()), sum(before.values())
            mix = []
            for c in sorted(set(now) | set(before), key=lambda c: -now.get(c, 0)):
                share = now.get(c, 0) / n_now if n_now else 0.0
                usual_share = before.get(c, 0) / n_before if n_before else None
                mix.append({"category": c, "value": now.get(c, 0), "share": round(share, 4),
                            "usual_share": round(usual_share, 4) if usual_share is not None else None,
                            "change_pp": round(100 * (share - usual_share), 1) if usual_share is not None else None,
                            "ids": _ids(w["id"][w["category"] == c])})
            out["category_mix"] = mix
            out["usual_weeks"] = 8
        else:
            out["category_mix"] = []
        if "confidence" in w.columns and w["confidence"].notna().any():
            conf = pd.to_numeric(w["confidence"], errors="coerce")
            low = w[conf < LOW_CONFIDENCE]
            out["low_confidence"] = {"value": len(low), "of": int(conf.notna().sum()),
                                     "share": round(len(low) / max(int(conf.notna().sum()), 1), 4),
                                     "threshold": LOW_CONFIDENCE, "ids": _ids(low["id"])}
        else:
            out["low_confidence"] = None
        out["corrections"] = corrections  # None: the input holds no human corrections (a file)
        if "model_version" in w.columns and w["model_version"].notna().any():
            out["model_versions"] = [{"version": v, "value": n} for v, n in Counter(w["model_version"].dropna()).most_common()]
        else:
            out["model_versions"] = [{"version": v, "value": len(w)} for v in versions]
        return out

    # -- summary sentences
    def summary(self, headline, risks, coming, hot, quiet) -> list[str]:
        h = headline
        line = f"本周（{self.week_start.month}月{self.week_start.day}日—{self.week_end.month}月{self.week_end.day}日）共收到诉求{h['received']['value']:,}件"
        if h["previous_week"]["change_pct"] is not None:
            line += f"，较上周{'增加' if h['previous_week']['change_pct'] >= 0 else '减少'}{abs(h['previous_week']['change_pct']):.1f}%"
        if h["same_week_last_year"] and h["same_week_last_year"]["change_pct"] is not None:
            c = h["same_week_last_year"]["change_pct"]
            line += f"，较去年同期{'增加' if c >= 0 else '减少'}{abs(c):.1f}%"
        out = [line + "。"]
        if quiet:
            out.append("本周平稳：未发现需要处置的异常上升、季节内突发或新问题，也没有季节性问题开始上升。")
        else:
            if risks:
                top = "；".join(f"{r['title']}（{r['kind_label']}）" for r in risks[:3])
                out.append(f"需要处置的风险{len(risks)}项，居前的是：{top}。")
            for c in coming:
                if c["status"] == "rising":
                    out.append(c["sentence"])
        due = [c for c in coming if c["status"] == "due"]
        if due:
            out.append("未来四周可能进入高发期：" + "、".join(c["topic"] for c in due) + "。")
        if hot["groups"]:
            g = hot["groups"][0]
            out.append(f"本周热点{hot['total_groups']}个，最热的是「{g['summary']}」（{g['size']}件）。")
        return out


# --- the database ----------------------------------------------------------------------------
def digest_from_db(database_url: str, week_ending, *, tagger=None, timezone: str | None = None,
                   cache: bool | Path = True) -> dict:
    """The digest of the week from the service database: appeals (current category and
    urgency: the latest human label, else the prediction), their latest predictions
    (confidence, model version, deadlines), labels created in the week (corrections) and
    the stored hotspot groups (grouped here when the database has none for the week).

    ``timezone``: the hotline's (``Settings().timezone``, ``SUQIU_TIMEZONE``, by default).
    ``cache``: as for :func:`digest_from_file`; here it keeps the appeals' texts by ``seq``
    (:mod:`service.digest_cache`: every other column is read from the database each time)."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from service.config import Settings
    from service.db import Appeal, Label, Prediction, make_engine
    from service.digest_cache import DatabaseHistory
    from service.hotspot_store import HotspotAssignment, HotspotGroup

    zone = timezone or Settings().timezone
    week_end = _week_end(week_ending)
    tz = ZoneInfo(zone)
    end = datetime.combine(week_end + timedelta(days=1), datetime.min.time(), tz)
    start = end - timedelta(days=HISTORY_DAYS)
    week_lo = end - timedelta(days=7)
    history = DatabaseHistory(database_url, cache_dir=_cache_dir(cache))
    memo = history.memo()
    engine = make_engine(database_url)
    future = None
    try:
        with Session(engine) as s:
            assigned = s.execute(select(HotspotAssignment.appeal_id, HotspotAssignment.group_id)
                                 .join(Appeal, Appeal.id == HotspotAssignment.appeal_id)
                                 .where(Appeal.time >= week_lo, Appeal.time < end,
                                        HotspotAssignment.group_id.is_not(None))).all()
            # The week's hotspots are grouped on the other core while this one reads the history and
            # fits early warning. On PostgreSQL the history is read first: the server's process takes
            # the other core while it sends (a first run: 10.5 s against 11.2 s the other way round);
            # SQLite reads in this process, with the other core free for the grouping (8.9 s against 9.9 s).
            server_reads = s.get_bind().dialect.name == "postgresql"
            if server_reads:
                cols, seq, kept = _stored_history(s, start, end, history)
            if not assigned and tagger is None:
                future = _group_stored_week(s, week_lo, end, tz, zone, week_end, memo)
            if not server_reads:
                cols, seq, kept = _stored_history(s, start, end, history)
            latest = (select(Prediction.appeal_id, func.max(Prediction.id).label("pid"))
                      .join(Appeal, Appeal.id == Prediction.appeal_id)
                      .where(Appeal.time >= week_lo, Appeal.time < end).group_by(Prediction.appeal_id).subquery())
            preds = s.execute(select(Prediction.appeal_id, Prediction.confidence, Prediction.model_version,
                                     Prediction.deadlines).join(latest, latest.c.pid == Prediction.id)).all()
            labels = s.execute(select(Label.appeal_id, Label.field, Label.old_value, Label.new_value, Label.created_at)
                               .where(Label.created_at >= week_lo, Label.created_at < end)
                               .order_by(Label.id)).all()
            group_rows = {}
            if assigned:
                gids = sorted({g for _, g in assigned})
                for i in range(0, len(gids), 500):
                    for g in s.scalars(select(HotspotGroup).where(HotspotGroup.id.in_(gids[i:i + 500]))):
                        group_rows[g.id] = g
    except BaseException:
        if future is not None:
            future.shutdown()
        raise
    finally:
        engine.dispose()
    if not len(seq):
        if future is not None:
            future.shutdown()
        raise ValueError(f"the database has no appeals with a time before {end.date()} (week ending {week_end})")
    cols["time"] = cols["time"].dt.tz_convert(tz)
    # the week's latest predictions, by id; every column but the times as objects, None where missing
    week_rows = np.flatnonzero((cols["time"] >= pd.Timestamp(week_lo)).to_numpy())
    at = dict(zip(cols["id"][week_rows].tolist(), week_rows.tolist()))
    extra = {c: np.full(len(seq), None, dtype=object) for c in ("confidence", "model_version", "deadlines")}
    for a, conf, version, deadlines in preds:
        j = at.get(a)
        if j is not None:
            extra["confidence"][j], extra["model_version"][j], extra["deadlines"][j] = conf, version, deadlines
    cols["time"] = cols["time"].dt.tz_localize(None)
    # object columns as the driver gave them (None where NULL: no NaN to replace)
    # (not copied: every later change to the frame copies the column it changes)
    frame = pd.DataFrame({c: v if c == "time" else pd.Series(v, dtype=object, copy=False)
                          for c, v in {**cols, **extra}.items()}, copy=False)
    # Deadlines of the urgency in force (a label may have changed it): recomputed when they differ.
    corrections = {"value": len(labels), "ids": list(dict.fromkeys(a for a, *_ in labels)),
                   "items": [{"id": a, "field": fld, "old": o, "new": n,
                              "at": c.astimezone(tz).isoformat(timespec="minutes") if c else None}
                             for a, fld, o, n, c in labels]}
    groups = None
    if group_rows:
        members: dict[str, list[str]] = {}
        for a, g in assigned:
            members.setdefault(g, []).append(a)
        groups = []
        for gid, ids in members.items():
            g = group_rows.get(gid)
            if g is None or len(ids) < 2:
                continue
            groups.append({"group_id": gid, "appeal_ids": sorted(ids), "size": len(ids), "people": min(g.people, len(ids)),
                           "place": g.place, "summary": g.summary, "keywords": g.keywords, "heat": g.heat, "districts": g.districts or [],
                           "first_time": g.first_time.isoformat() if g.first_time else None,
                           "last_time": g.last_time.isoformat() if g.last_time else None})
    out = _build(frame, week_end, tagger=tagger, corrections=corrections, groups=groups, source="database", zone=zone,
                 memo=memo, future=future if groups is None else None)
    out["hotspots"]["source"] = "database" if groups is not None else "grouped for the digest"
    history.save(seq, cols["id"], kept, memo, changed=history.missing > 0)
    return out


_TAGS = ("seq", "id", "category", "urgency", "needs_review")  # read at every run: labels change them
_UNCHANGING = ("time", "district", "user", "title", "text")  # stored columns that never change: cached by seq


def _stored_history(session, start: datetime, end: datetime, history) -> tuple[dict, np.ndarray, dict]:
    """The columns of the appeals received in [start, end) as the digest reads them: ``id, time`` (UTC),
    ``text`` (title and text joined, normalised), ``district, user, category, urgency,
    needs_review``; their ``seq``; and what ``history`` keeps of them
    (:class:`service.digest_cache.DatabaseHistory`: text, time, district, sender). What it
    holds is not read again; the tags always are. Read through the driver's cursor (a
    million rows: no per-row objects of the ORM's)."""
    from sqlalchemy import select

    from service.db import Appeal

    where = (Appeal.time >= start, Appeal.time < end)
    conn = session.connection()
    cached = history.cached
    names = _TAGS if cached else _TAGS + _UNCHANGING
    # in arrival order, whichever order the scan gave (PostgreSQL's follows the rows' place on
    # disk): the digest sorts by time, stably, so ties in time keep arrival order on every database
    table = _fetch_columns(conn, select(*(getattr(Appeal, c) for c in names)).where(*where), sort_by=0)
    seq = table[0].astype(np.int64)
    ids = table[1]
    if cached:
        kept, hit = history.rows(seq, ids)
        missing = np.flatnonzero(~hit)
        if len(missing):  # appeals the entry does not hold: read whole (from the first of them on)
            at = {q: i for i, q in enumerate(seq[missing].tolist())}
            got = [r for r in _fetch(conn, select(Appeal.seq, *(getattr(Appeal, c) for c in _UNCHANGING))
                                     .where(Appeal.seq >= int(seq[missing].min()), *where)) if r[0] in at]
            order = missing[[at[r[0]] for r in got]]
            new = _kept_columns(pd.DataFrame([r[1:] for r in got], columns=list(_UNCHANGING)))
            for c, v in new.items():
                kept[c][order] = v
    else:
        kept = _kept_columns(pd.DataFrame(dict(zip(_UNCHANGING, table[len(_TAGS):]))))
        missing = seq
    history.missing = len(missing)
    cols = {"id": ids, "time": pd.Series(pd.DatetimeIndex(kept["time"].view("datetime64[ns]"), tz="UTC")),
            "district": kept["district"], "user": kept["user"], "category": table[2], "urgency": table[3],
            "needs_review": np.array([None if v is None else bool(v) for v in table[4]], dtype=object),
            "text": kept["text"]}
    return cols, seq, kept


def _group_stored_week(session, lo: datetime, end: datetime, tz, zone: str, week_end: date, memo):
    """A :class:`_Grouping` of the week's stored appeals, started before the history is read
    (None for a week too small to group apart). The rows are read in time, then arrival
    order: the order the whole history's rows come in on SQLite (its time index), and one
    order on every database."""
    from sqlalchemy import select

    from service.db import Appeal

    names = ("id", "time", "title", "text", "district", "user", "urgency")
    rows = _fetch(session.connection(), select(*(getattr(Appeal, c) for c in names))
                  .where(Appeal.time >= lo, Appeal.time < end).order_by(Appeal.time, Appeal.seq))
    if len(rows) < GROUP_APART:
        return None
    f = pd.DataFrame(rows, columns=list(names))
    f["time"] = pd.Series(pd.to_datetime(_utc_ns(f["time"]), utc=True)).dt.tz_convert(tz).dt.tz_localize(None)
    try:
        future = _group_apart(_prepare(f, week_end, zone, memo))
    except ValueError:
        return None  # grouped in _build, whose preparation of the whole history says what is wrong
    if future is not None:
        future.help()
    return future


def _kept_columns(f: pd.DataFrame) -> dict:
    """What the digest cache keeps of stored appeals (``f``: their ``_UNCHANGING`` columns as the
    driver gives them): the joined text, the time as UTC nanoseconds, district and sender."""
    return {"time": _utc_ns(f["time"]), "district": f["district"].to_numpy(dtype=object),
            "user": f["user"].to_numpy(dtype=object), "text": _joined_texts(f) if len(f) else np.zeros(0, dtype=object)}


def _utc_ns(times: pd.Series) -> np.ndarray:
    """Stored times (ISO text on SQLite, aware datetimes on PostgreSQL) as UTC nanoseconds."""
    if len(times) and isinstance(times.iat[0], str):
        times = pd.to_datetime(times, format="ISO8601", utc=True)
    else:
        times = pd.to_datetime(times, utc=True)
    return times.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _fetch_columns(conn, stmt, *, sort_by: int | None = None) -> list[np.ndarray]:
    """The columns of ``stmt``'s rows, each an object array of the values :func:`_fetch` gives
    (ints, text, None for NULL), but for times read through ADBC: UTC ``datetime64[ns]`` on
    PostgreSQL. ``sort_by``: the rows in ascending (stable) order of that integer column,
    whatever order the scan gave them in. SQLite files and PostgreSQL are read through Apache
    Arrow's ADBC drivers (``adbc-driver-sqlite``, ``adbc-driver-postgresql``): the rows come
    back as Arrow columns, and a text repeated in many rows is one Python string, where the
    ``sqlite3`` module and psycopg build a tuple and a string per row and value (a million
    rows from SQLite: 1.4 s instead of 3.4 s). Anything ADBC cannot read as the driver would
    (a column whose values change type after the first batch, a driver absent, a server it
    cannot reach) is read with :func:`_fetch`."""
    got = _fetch_arrow(conn, stmt, sort_by)
    if got is not None:
        return got
    rows = _fetch(conn, stmt)
    width = len(stmt.selected_columns)
    table = np.empty((len(rows), width), dtype=object)
    if rows:
        table[:] = rows
    order = _order(table[:, sort_by].astype(np.int64)) if sort_by is not None else None
    return [table[:, k] if order is None else table[order, k] for k in range(width)]


def _order(keys: np.ndarray) -> np.ndarray | None:
    """The stable ascending order of ``keys``; None when they are in it already."""
    if len(keys) < 2 or (keys[1:] >= keys[:-1]).all():
        return None
    return np.argsort(keys, kind="stable")


_ADBC_BATCH_ROWS = 1 << 20  # rows ADBC reads before fixing a column's type (a NULL-only start reads as int)


def _fetch_arrow(conn, stmt, sort_by: int | None = None) -> list[np.ndarray] | None:
    """:func:`_fetch_columns` through ADBC on a SQLite file or PostgreSQL; None where it does
    not apply or fails (the reason logged)."""
    url = conn.engine.url
    if conn.dialect.name == "sqlite" and url.database and url.database != ":memory:":
        read = _adbc_sqlite
    elif conn.dialect.name == "postgresql":
        read = _adbc_postgres
    else:
        return None
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        table = read(conn, stmt)
    except ImportError:
        return None
    except Exception as err:  # noqa: BLE001 (any failure: read with the database's own driver instead)
        log.info("digest: ADBC did not read the history (%s); reading it with %s", err, conn.dialect.driver)
        return None
    # rows reordered before the values become Python objects: the codes of a repeated text, not its strings
    order = _order(table.column(sort_by).to_numpy()) if sort_by is not None else None

    def ordered(a: np.ndarray) -> np.ndarray:
        return a if order is None else a[order]

    out = []
    for col in table.columns:
        n = len(col)
        if col.null_count == n:
            out.append(np.full(n, None, dtype=object))
        elif (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)) \
                and pc.count_distinct(col.slice(0, 10_000)).as_py() > 9_000:  # ids: distinct, nothing to share
            out.append(ordered(col.to_numpy(zero_copy_only=False)))
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            enc = pc.dictionary_encode(col).combine_chunks()
            values = np.empty(len(enc.dictionary) + 1, dtype=object)
            values[:-1] = enc.dictionary.to_pylist()  # values[-1] stays None: NULL
            out.append(values[ordered(pc.fill_null(enc.indices, len(values) - 1).to_numpy())])
        elif pa.types.is_timestamp(col.type) and col.null_count == 0:
            out.append(ordered(pc.cast(col, pa.timestamp("ns", tz=col.type.tz)).to_numpy().astype("datetime64[ns]")))
        else:
            out.append(ordered(np.array(col.to_pylist(), dtype=object)))
    return out


def _adbc_sqlite(conn, stmt):
    """``stmt``'s rows as an Arrow table, read from the SQLite file through ADBC."""
    import adbc_driver_sqlite.dbapi as adbc

    compiled = stmt.compile(dialect=conn.dialect)
    params = []
    for name in compiled.positiontup:  # bound as the dialect binds them (times as its text)
        bind = compiled.binds[name]
        process = bind.type.bind_processor(conn.dialect)
        value = compiled.params[name]
        params.append(process(value) if process else value)
    with adbc.connect(str(Path(conn.engine.url.database).resolve())) as db, db.cursor() as cur:
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(_ADBC_BATCH_ROWS)})
        cur.execute(str(compiled), params)
        return cur.fetch_arrow_table()


def _adbc_postgres(conn, stmt):
    """``stmt``'s rows as an Arrow table, read from PostgreSQL through ADBC (its own connection,
    libpq's URI of the engine's URL). The values are written into the query as literals
    (SQLAlchemy's quoting): ADBC reads a query without parameters with ``COPY … TO STDOUT
    (FORMAT binary)``, one with parameters as one result held whole (a million rows: 2.5 s
    against 5.8 s)."""
    import adbc_driver_postgresql.dbapi as adbc

    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    uri = conn.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with adbc.connect(uri) as db, db.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def _fetch(conn, stmt) -> list[tuple]:
    """The rows of ``stmt`` as the database driver gives them (times as stored: text on
    SQLite, aware datetimes on PostgreSQL), without SQLAlchemy's row processing."""
    result = conn.execute(stmt)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


# --- rendering -------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def cjk_font() -> str:
    """The CJK font family for matplotlib, or FontMissingError saying how to install it."""
    from matplotlib import font_manager as fm

    def find():
        try:
            return fm.fontManager.findfont(fm.FontProperties(family=CJK_FAMILY), fallback_to_default=False)
        except ValueError:
            return None

    if find() is None:  # installed after matplotlib cached its font list: add the files it did not see
        for path in sorted(Path("/usr/share/fonts").glob("**/NotoSansCJK*.tt[cf]")):
            fm.fontManager.addfont(str(path))
    if find() is None:
        raise FontMissingError(f"the digest's charts need the CJK font '{CJK_FAMILY}', which is not installed; "
                               "install Debian's fonts-noto-cjk (apt-get install -y fonts-noto-cjk; .ci/run does)")
    return CJK_FAMILY


_SVG_HEAD = re.compile(r"^.*?(?=<svg)", re.S)
_SVG_META = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


def _svg(fig, salt: str) -> str:
    import io

    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    s = _SVG_META.sub("", _SVG_HEAD.sub("", buf.getvalue(), count=1))
    s = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="chart" role="img"', s, count=1)
    return s


_DRAWING = threading.Lock()  # pyplot and rcParams are process-wide: one chart at a time
_DRAWN: dict[str, str] = {}   # charts drawn ahead (_draw_ahead), by what they show


def _chart_key(chart: dict, salt: str) -> str:
    return salt + "\0" + json.dumps(chart, sort_keys=True)


def _draw_ahead(headline: dict, risks: list[dict], until=lambda: False) -> None:
    """Draw the charts :func:`render` will draw, while the week's hotspots are grouped in
    another process (this one would only wait), until ``until()``: rendering then reuses
    them."""
    todo = ([(headline["daily"], "daily")] if headline.get("daily") else []) + \
        [(r["chart"], f"risk{r['rank']}") for r in risks[:MAX_CHARTS]]
    drawn = {}
    try:
        for chart, salt in todo:
            if until():
                break
            drawn[_chart_key(chart, salt)] = _risk_chart(chart, salt)
    except FontMissingError:
        return  # render says so, if it is asked for HTML
    with _DRAWING:
        _DRAWN.clear()
        _DRAWN.update(drawn)


def _risk_chart(chart: dict, salt: str) -> str:
    with _DRAWING:
        got = _DRAWN.get(_chart_key(chart, salt))
        return got if got is not None else _draw_chart(chart, salt)


def _draw_chart(chart: dict, salt: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    family = cjk_font()
    x = np.arange(len(chart["days"]))
    with matplotlib.rc_context({"font.family": family, "font.size": 8, "axes.unicode_minus": False}):
        fig, ax = plt.subplots(figsize=(6.2, 1.9), dpi=72)
        win = chart.get("window")
        colors = ["#c0392b" if win and win[0] <= d <= win[1] else "#5b7db1" for d in chart["days"]]
        ax.fill_between(x, chart["lower"], chart["upper"], step="mid", color="#d9d9d9", label="预计范围", linewidth=0)
        ax.plot(x, chart["expected"], color="#7f7f7f", linewidth=1, linestyle="--", label="预计")
        ax.bar(x, chart["counts"], color=colors, width=0.75, label="每日件数")
        ticks = [i for i in range(len(x)) if (len(x) - 1 - i) % 7 == 0]
        ax.set_xticks(ticks, [chart["days"][i][5:] for i in ticks])
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_ylabel("件/日")
        ax.legend(fontsize=7, frameon=False, loc="upper left", ncol=3)
        return _svg(fig, salt)


def _templates():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * v:.1f}%"
    env.filters["signed"] = lambda v: "—" if v is None else f"{v:+.1f}%"
    env.filters["pp"] = lambda v: "—" if v is None else f"{v:+.1f}"
    env.filters["num"] = lambda v: "—" if v is None else f"{v:,}"
    return env


def render(digest: dict, fmt: str = "html") -> str:
    """The digest as ``"html"`` (one self-contained page), ``"md"`` or ``"json"``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if fmt == "json":
        return json.dumps(digest, ensure_ascii=False, indent=1)
    if fmt == "md":
        return _templates().get_template("digest.md.j2").render(d=digest, kind_label=KIND_LABEL)
    charts = {}
    if digest["headline"].get("daily"):
        charts[0] = _risk_chart(digest["headline"]["daily"], salt="daily")
    for r in digest["risks"][:MAX_CHARTS]:
        charts[r["rank"]] = _risk_chart(r["chart"], salt=f"risk{r['rank']}")
    return _templates().get_template("digest.html.j2").render(d=digest, charts=charts, max_charts=MAX_CHARTS)
