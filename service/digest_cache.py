"""What a weekly digest keeps from one run to the next (issue 15): the history behind a week
does not change from one Monday to the next.

A digest reads two years of appeals to write one week. Most of that work depends only on
rows that were already there last week, so it is kept under ``var/digest_cache/``, one
entry per source, and redone only for what is new:

* **a file** (CSV/TSV read by :func:`service.digest.read_input`): the rows read from it, the
  problems found in it and :class:`models.trends.TextMemo` (each distinct text's normalised
  form, topics and words). The entry is keyed by the file's path and valid for its first
  ``size`` bytes, whose SHA-256 it records: a file that starts with exactly those bytes
  (the same file, or the same file with rows appended) reuses the rows and reads only what
  follows; any other file — one changed history row, one byte — is read whole again and
  the entry rewritten. Appended rows are read as if the file were read whole (row numbers,
  ``row-N`` ids and problems continue from the cached part).
* **the service database**: what never changes of a stored appeal, by its ``seq`` and
  ``id`` — its text (title and text joined, as the digest reads them), time, district and
  sender — and the memo. The columns a label or re-tagging changes (category, urgency,
  review flag) are read from the database at every run, so every change to them is seen;
  the appeals the entry does not hold are read whole and added. This relies on the store's
  rule that a stored appeal's other columns never change (``service.store.ingest`` refuses
  a stored id with another text, 409, and ignores a re-send's other fields; a label changes
  only the tags); an appeal deleted and stored again gets a new ``seq`` or is caught by its
  id.

An entry is also keyed by everything its contents depend on (:func:`pipeline_key`): this
module's version, the source of the modules that read and index texts, the rule files they
read (topics, negation words, user dictionary, column names) and the versions of pandas,
numpy, OpenCC, rjieba and Vectorscan; a change to any of them makes every entry stale. A
digest is the same with or without its entry (tested: the JSON of a run that used the entry
equals that of a run without, ``generated_at`` and ``seconds`` aside).

Entries hold appeal texts: they are written with the database's care (a directory only its
owner can enter, files only its owner can read) and can be deleted at any time
(``rm -r var/digest_cache``); a run without its entry rebuilds it. Sources of fewer than
:data:`MIN_ROWS` rows are not cached (they are read in well under a second).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["VERSION", "MIN_ROWS", "default_dir", "pipeline_key", "FileHistory", "DatabaseHistory"]

log = logging.getLogger(__name__)

VERSION = 2  # 2: the database entry keeps times, districts and senders too
MIN_ROWS = 50_000  # smaller sources are read in well under a second: not worth an entry
ROOT = Path(__file__).resolve().parents[1]
_SOURCES = ("corpora/text.py", "corpora/topics.py", "corpora/rules.py", "corpora/records.py", "models/trends.py",
            "service/digest.py", "service/digest_cache.py")
_RULES = ("topics.csv", "negation.txt", "userdict.txt", "columns.csv")
_LIBRARIES = ("pandas", "numpy", "OpenCC", "rjieba", "hyperscan")
_CHUNK = 1 << 23
_SEP = "\x1f"  # joins the ids of an entry (an id holding it is kept as it is)
_KEPT = ("text", "district", "user")  # with ``time``: what the database entry keeps of an appeal
_NO_TIME = np.iinfo(np.int64).min  # pandas' NaT


def default_dir() -> Path:
    """``var/digest_cache`` beside the service's default database."""
    return ROOT / "var" / "digest_cache"


@lru_cache(maxsize=1)
def pipeline_key() -> str:
    """SHA-256 of everything an entry's contents depend on besides its source."""
    from importlib.metadata import PackageNotFoundError, version

    from corpora.text import DATA_DIR

    h = hashlib.sha256(f"suqiu.digest_cache/{VERSION}\n".encode())
    for rel in _SOURCES:
        h.update(rel.encode() + b"\0" + (ROOT / rel).read_bytes())
    for name in _RULES:
        h.update(name.encode() + b"\0" + (DATA_DIR / name).read_bytes())
    for lib in _LIBRARIES:
        try:
            h.update(f"{lib}={version(lib)}\n".encode())
        except PackageNotFoundError:
            h.update(f"{lib}=-\n".encode())
    return h.hexdigest()


# --- entries ----------------------------------------------------------------------------------
def _entry(cache_dir: Path, kind: str, source: str) -> Path:
    return Path(cache_dir) / f"{kind}-{hashlib.sha256(source.encode()).hexdigest()[:24]}"


def _meta(entry: Path, check) -> dict | None:
    """An entry's meta when it is current and passes ``check``; None when absent or stale."""
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        log.warning("digest cache %s unreadable (%s): rebuilding it", entry, type(err).__name__)
        return None
    ok = isinstance(meta, dict) and meta.get("version") == VERSION and meta.get("pipeline") == pipeline_key()
    return meta if ok and check(meta) else None


def _data(entry: Path) -> dict | None:
    try:
        with open(entry / "data.pkl", "rb") as fh:
            return pickle.load(fh)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as err:
        log.warning("digest cache %s unreadable (%s): rebuilding it", entry, type(err).__name__)
        return None


def _save(entry: Path, meta: dict, data: dict) -> None:
    """Write an entry atomically (a reader sees the old one or the new one), owner-only."""
    try:
        entry.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(entry, 0o700)
        meta = {**meta, "version": VERSION, "pipeline": pipeline_key()}
        for name, blob in (("data.pkl", pickle.dumps(data, protocol=5)),
                           ("meta.json", json.dumps(meta, ensure_ascii=False).encode())):
            tmp = entry / f".{name}.{os.getpid()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            os.replace(tmp, entry / name)
    except OSError as err:  # a cache that cannot be written costs the next run time, nothing else
        log.warning("digest cache %s not written: %s", entry, err)


# --- a file -----------------------------------------------------------------------------------
class _Hasher(threading.Thread):
    """SHA-256 of a file's first ``upto`` bytes and of all of it, read in a thread (hashlib
    and file reads release the GIL: it runs beside the caller's work); keeps what follows
    ``upto``."""

    def __init__(self, path: Path, upto: int):
        super().__init__(daemon=True)
        self.path, self.upto = path, upto
        self.prefix = self.whole = None
        self.tail = b""
        self.size = 0
        self.error: OSError | None = None

    def run(self):
        try:
            h, pos, tail = hashlib.sha256(), 0, []
            buf = bytearray(_CHUNK)
            view = memoryview(buf)
            with open(self.path, "rb", buffering=0) as fh:
                while True:
                    if pos == self.upto:
                        self.prefix = h.hexdigest()
                    want = _CHUNK if pos >= self.upto else min(_CHUNK, self.upto - pos)
                    got = fh.readinto(view[:want])
                    if not got:
                        break
                    h.update(view[:got])
                    if 0 <= self.upto <= pos:
                        tail.append(bytes(view[:got]))
                    pos += got
            self.whole, self.size, self.tail = h.hexdigest(), pos, b"".join(tail)
        except OSError as err:
            self.error = err


def _pack(frame: pd.DataFrame, packed: dict | None = None) -> dict:
    """``frame`` by column, for pickling: times as datetime64, ids as they are, other
    columns as codes into their distinct values (a million rows of a few thousand texts,
    districts, categories pickle and load in a moment). With ``packed``, ``frame`` holds
    the rows that follow the packed ones (only those are encoded)."""
    from models.trends import _factorize

    cols = {}
    for name in frame.columns:
        col = frame[name]
        kind, old, dtype = packed["columns"][name] if packed is not None else (None, None, col.dtype)
        if col.dtype.kind == "M":
            data = col.to_numpy()
            cols[name] = ("values", data if old is None else np.concatenate([old, data]), dtype)
            continue
        if name == "id":
            # a million distinct strings: one string and a split (pickle writes and reads it at once)
            data = col.to_numpy(dtype=object)
            n_old = packed["n"] if packed is not None else 0
            if all(isinstance(v, str) and _SEP not in v for v in data) and kind in (None, "joined"):
                joined = _SEP.join(data)
                cols[name] = ("joined", joined if not n_old else old if not len(data) else old + _SEP + joined, dtype)
            else:
                before = (np.array(old.split(_SEP) if n_old else [], dtype=object) if kind == "joined" else old)
                cols[name] = ("values", data if before is None else np.concatenate([before, data]), dtype)
            continue
        values = col.to_numpy(dtype=object)
        if old is None:
            codes, uniques = _factorize(values)
            cols[name] = ("coded", (codes.astype(np.int32), uniques), dtype)
            continue
        codes, uniques = old
        at = {v: i for i, v in enumerate(uniques)}
        new = np.fromiter((at.setdefault(v, len(at)) for v in values), dtype=np.int32, count=len(values))
        cols[name] = ("coded", (np.concatenate([codes, new]), list(at)), dtype)
    return {"n": len(frame) + (packed["n"] if packed is not None else 0), "columns": cols}


def _unpack(packed: dict) -> pd.DataFrame:
    """The frame :func:`_pack` packed, each column of the type it had (an object column stays
    one; a column of strings is inferred as :func:`service.digest.read_input`'s are)."""
    out = pd.DataFrame(index=pd.RangeIndex(packed["n"]))
    for name, (kind, data, dtype) in packed["columns"].items():
        if kind == "coded":
            codes, uniques = data
            values = np.empty(len(uniques), dtype=object)
            values[:] = uniques
            data = values[codes]
        elif kind == "joined":
            values = np.empty(packed["n"], dtype=object)
            values[:] = data.split(_SEP) if packed["n"] else []
            data = values
        out[name] = pd.Series(data, dtype=object) if dtype == object else data
        if out[name].dtype != dtype:
            out[name] = out[name].astype(dtype)
    return out


@dataclass
class FileHistory:
    """The appeals of a CSV/TSV file for the digest (:func:`service.digest.read_input`),
    with the entry of the file's last digest when it is still valid.

    ``read()`` gives the frame ``read_input`` gives and a :class:`models.trends.TextMemo`;
    ``save(frame, memo)`` after the digest stores them for the next run. ``state`` says
    what happened: ``"off"`` (not cached: no entry directory, another kind of file, too
    small), ``"cold"`` (read whole), ``"same"`` (the file is the cached one), ``"appended"``
    (the cached rows plus the rows appended since).
    """

    path: Path
    max_chars: int
    cache_dir: Path | None = None
    min_rows: int | None = None  # default MIN_ROWS
    state: str = "off"
    _meta: dict = field(default_factory=dict, repr=False)
    _problems: list = field(default_factory=list, repr=False)
    _packed: dict | None = field(default=None, repr=False)

    def read(self):
        from models.trends import TextMemo
        from service.digest import _csv_sep, _fast_read, _log_problems, _slow_read

        path = Path(self.path)
        sep = _csv_sep(path)
        if sep is None:
            return _slow_read(path, self.max_chars), None
        entry = _entry(self.cache_dir, "file", str(path.resolve())) if self.cache_dir is not None else None
        meta = None
        if entry is not None:
            meta = _meta(entry, lambda m: m.get("max_chars") == self.max_chars and m.get("sep") == sep
                         and m.get("ends") is True)
        hasher = _Hasher(path, meta["size"] if meta else -1)
        if entry is not None:
            hasher.start()  # beside the unpickling (an entry) or the parsing (none)
        if meta is not None:
            data = _data(entry)
            hasher.join()
            # the data must be the meta's (another process may have replaced the entry between the two reads)
            if data is not None and data.get("sha256") == meta["sha256"] and hasher.error is None \
                    and hasher.prefix == meta["sha256"]:
                got = (None, [], 0)
                if hasher.tail:
                    got = _fast_read(io.BytesIO(meta["header"].encode("latin-1") + hasher.tail), sep,
                                     self.max_chars, first_row=meta["rows"] + 1)
                if got is not None and (not hasher.tail or list(got[0].columns) == list(data["packed"]["columns"])):
                    tail, problems, rows = got
                    cached = data["packed"]["n"]
                    self._packed = _pack(tail, data["packed"]) if hasher.tail else data["packed"]
                    frame = _unpack(self._packed)
                    self._problems = data["problems"] + problems
                    _log_problems(path, self._problems)
                    self.state = "appended" if hasher.tail else "same"
                    self._meta = {"size": hasher.size, "sha256": hasher.whole, "rows": meta["rows"] + rows,
                                  "header": meta["header"],
                                  "ends": hasher.tail.endswith(b"\n") if hasher.tail else meta["ends"]}
                    log.info("digest cache: %s rows of %s cached, %s appended", f"{cached:,}", path,
                             f"{len(frame) - cached:,}")
                    return frame, data["memo"]
            log.info("digest cache: %s changed since its last digest: reading it whole", path)
            hasher = _Hasher(path, -1)
            hasher.start()
        got = _fast_read(path, sep, self.max_chars)
        if got is None:
            return _slow_read(path, self.max_chars), None
        frame, self._problems, rows = got
        _log_problems(path, self._problems)
        if entry is not None and rows >= (MIN_ROWS if self.min_rows is None else self.min_rows):
            hasher.join()
            with open(path, "rb") as fh:
                first = fh.readline()
                fh.seek(max(0, hasher.size - 1))
                ends = fh.read(1) == b"\n"
            # a header holding quotes could span lines: appended rows could not be parsed alone
            if hasher.error is None and b'"' not in first and first.endswith(b"\n"):
                self.state = "cold"
                self._meta = {"size": hasher.size, "sha256": hasher.whole, "rows": rows,
                              "header": first.decode("latin-1"), "ends": ends}
        return frame, TextMemo()

    def save(self, frame: pd.DataFrame, memo) -> None:
        """Store ``frame`` (what :meth:`read` returned) and ``memo`` for the next run;
        nothing when the entry is current. Rows can be appended to the file only after a
        complete last line."""
        if self.state not in ("cold", "appended") or self.cache_dir is None or not self._meta.get("ends"):
            return
        from service.digest import _csv_sep

        _save(_entry(self.cache_dir, "file", str(Path(self.path).resolve())),
              {**self._meta, "source": str(Path(self.path).resolve()), "max_chars": self.max_chars,
               "sep": _csv_sep(Path(self.path))},
              {"packed": self._packed if self._packed is not None else _pack(frame), "problems": self._problems,
               "memo": memo, "sha256": self._meta["sha256"]})


# --- the database -----------------------------------------------------------------------------
def _source_of(url) -> str:
    """The database's identity without its password."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database:
        return f"sqlite:///{Path(u.database).resolve()}"
    return u.render_as_string(hide_password=True)


@dataclass
class DatabaseHistory:
    """Appeal texts of the service database kept by ``seq`` and ``id`` (see the module
    docstring), and the memo. ``state``: ``"off"``, ``"cold"`` (no entry), ``"warm"``."""

    url: str
    cache_dir: Path | None = None
    min_rows: int | None = None  # default MIN_ROWS
    state: str = "off"
    missing: int = 0  # appeals read whose texts the entry did not hold
    _data: dict | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.cache_dir is not None:
            entry = _entry(self.cache_dir, "db", _source_of(self.url))
            self._data = _data(entry) if _meta(entry, lambda m: True) is not None else None
            self.state = "warm" if self._data is not None else "cold"

    @property
    def cached(self) -> bool:
        return self._data is not None

    def rows(self, seq: np.ndarray, ids: np.ndarray) -> tuple[dict, np.ndarray]:
        """(the cached columns of each appeal — ``text``, ``time`` as UTC nanoseconds since
        the epoch, ``district``, ``user`` — None, or the smallest int64 for a time, where it has
        none; which appeals the entry holds)."""
        out = {c: np.full(len(seq), None, dtype=object) for c in _KEPT}
        out["time"] = np.full(len(seq), _NO_TIME, dtype=np.int64)
        if self._data is None or not len(seq) or not len(self._data["seq"]):
            return out, np.zeros(len(seq), dtype=bool)
        have_seq = self._data["seq"]
        have_id = _unpack_ids(self._data["id"], len(have_seq))
        pos = np.minimum(np.searchsorted(have_seq, seq), len(have_seq) - 1)
        hit = (have_seq[pos] == seq) & (have_id[pos] == ids)
        for c in _KEPT:
            codes, uniques = self._data[c]
            values = np.empty(len(uniques), dtype=object)
            values[:] = uniques
            out[c][hit] = values[codes[pos[hit]]]
        out["time"][hit] = self._data["time"][pos[hit]]
        log.info("digest cache: %s appeals of %s cached, %s read", f"{int(hit.sum()):,}", _source_of(self.url),
                 f"{int((~hit).sum()):,}")
        return out, hit

    def memo(self):
        from models.trends import TextMemo

        return self._data["memo"] if self._data is not None else TextMemo()

    def save(self, seq: np.ndarray, ids: np.ndarray, columns: dict, memo, *, changed: bool) -> None:
        """Store what :meth:`rows` gives of the appeals read (``columns``: ``text``,
        ``district``, ``user`` and ``time`` as UTC nanoseconds) and the memo, when any appeal
        was not cached or the entry holds appeals no longer read."""
        from models.trends import _factorize

        if self.cache_dir is None or len(seq) < (MIN_ROWS if self.min_rows is None else self.min_rows):
            return
        if self._data is not None and not changed and len(self._data["seq"]) == len(seq):
            return
        order = np.argsort(seq, kind="stable")
        data = {"seq": np.asarray(seq, dtype=np.int64)[order], "id": _pack_ids(np.asarray(ids, dtype=object)[order]),
                "time": np.asarray(columns["time"], dtype=np.int64)[order], "memo": memo}
        for c in _KEPT:
            codes, uniques = _factorize(np.asarray(columns[c], dtype=object)[order])
            data[c] = (codes.astype(np.int32), uniques)
        _save(_entry(self.cache_dir, "db", _source_of(self.url)), {"source": _source_of(self.url)}, data)


def _pack_ids(ids: np.ndarray):
    """Ids as one string (pickled and read back at once), or as they are when one holds the separator."""
    if all(isinstance(v, str) and _SEP not in v for v in ids):
        return _SEP.join(ids)
    return ids


def _unpack_ids(packed, n: int) -> np.ndarray:
    if isinstance(packed, str):
        out = np.empty(n, dtype=object)
        out[:] = packed.split(_SEP) if n else []
        return out
    return packed
