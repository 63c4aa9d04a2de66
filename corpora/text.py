"""Chinese text pipeline: normalisation, title joining, segmentation and PII redaction.

Everything that leaves Suqiu for a human (reports, logs, examples) goes through
:func:`redact`, and text shown to a reader (digest excerpts, the review queue) through
:func:`redact_names` as well. Models see :func:`normalise`-d text.
"""
from __future__ import annotations

import html
import re
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"

__all__ = ["normalise", "strip_control", "join_title", "redact", "redact_names", "names_in", "tokenize", "is_negated",
           "DATA_DIR"]

# Export junk seen in real message-board dumps: Excel's escaped CR, anchor remnants,
# HTML tags and entities.
_EXPORT_JUNK = re.compile(r"_x000[dDaA]_|\[a\]href=\S*|\[/?a\]|\[\$\w+\$\]")
_TAG = re.compile(r"</?(?:p|br|div|span|a|img|font|strong|b|i|u|table|tr|td|li|ul|ol|h\d)\b[^>]*>",
                  re.IGNORECASE)
_C0 = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"  # control characters except tab and line breaks
_C0_ONLY = re.compile(f"[{_C0}]")
_CONTROL = re.compile(f"[{_C0}\u200b-\u200f\u2028\u2029\ufeff]")  # plus zero-width and separators
_SPACE = re.compile(r"[ \t\r\n\u00a0\u3000]+")


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def normalise(text: str | None) -> str:
    """Return ``text`` cleaned for models and people.

    Traditional → simplified (OpenCC), full-width → half-width (NFKC), HTML tags,
    entities and export junk removed, control characters dropped, whitespace collapsed.

    Examples
    --------
    >>> normalise("樓道裡有煤氣味　ＡＢＣ１２３<br/>&nbsp;_x000D_")
    '楼道里有煤气味 ABC123'
    """
    if text is None:
        return ""
    text = str(text)
    text = _EXPORT_JUNK.sub(" ", text)
    text = html.unescape(text)
    text = _TAG.sub(" ", text)
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub("", text)
    text = _t2s().convert(text)
    return _SPACE.sub(" ", text).strip()


def strip_control(text: str | None) -> str | None:
    r"""Drop control characters (keeping tab and line breaks) and nothing else: for storing a
    record as the caller sent it.

    Examples
    --------
    >>> strip_control("樓道\x00裡\x07有\n煤氣味")
    '樓道裡有\n煤氣味'
    """
    return None if text is None else _C0_ONLY.sub("", text)


def join_title(title: str | None, text: str | None) -> str:
    """Join a title and its text without repeating a title the text already contains (usually at its start).

    Examples
    --------
    >>> join_title("小区暖气不热", "小区暖气不热，家里只有十五度。")
    '小区暖气不热,家里只有十五度。'
    >>> join_title("小区暖气不热", "家里只有十五度。")
    '小区暖气不热。家里只有十五度。'
    """
    title, text = normalise(title), normalise(text)
    if not title:
        return text
    if not text:
        return title
    if title in text:  # usually at its start; anywhere, it is already said
        return text
    return f"{title}。{text}"


# --- PII redaction ---------------------------------------------------------------
# Order matters: longer, more specific patterns first.
_PII_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("[邮箱]", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
    ("[身份证号]", re.compile(r"(?<!\d)\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?!\d)")),
    # 16–19 digits, in groups or not (bank cards); not a timestamp such as a model version 20261130-145928
    ("[银行卡号]", re.compile(r"(?<!\d)\d(?:[ -]?\d){15,18}(?!\d)")),
    ("[手机号]", re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)")),
    ("[电话]", re.compile(r"(?<!\d)(?:(?:\(0\d{2,3}\)|0\d{2,3})[- ]?[2-8]\d{2,3}[- ]?\d{4}|[2-8]\d{6,7})(?!\d)")),
    ("[车牌号]", re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领][A-Z][·.]?[A-Z0-9]{4,5}[A-Z0-9挂学警港澳]")),
    ("[门牌号]", re.compile(r"\d+(?:[-—]\d+)*\s*(?:栋|幢|号楼|单元|室|号房)(?:\s*\d+(?:[-—]\d+)*\s*(?:栋|幢|单元|室|楼|号|层))*")),
]


# Full-width forms (１３８…, ＠, （）) fold to ASCII for matching only: one character for one,
# so a match's span in the folded text is its span in the original.
_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_FULL_WIDTH = re.compile("[\uff01-\uff5e\u3000]")
_PII_CHAR = re.compile(r"[\dA-Za-z@]")  # every pattern above needs one of these: a fast way out


def redact(text: str | None, *, placeholder: str | None = None) -> str:
    """Replace personal data with placeholders.

    Mobile and landline numbers, 18-digit ID numbers, bank cards, e-mail, plate numbers
    and door numbers in addresses, also when written in full-width characters (raw input
    that has not been through :func:`normalise`). ``placeholder`` replaces every match
    instead of its label (e.g. ``" "`` to drop personal data from text for word counts).

    Examples
    --------
    >>> redact("电话13812345678，住3栋2单元501室，车牌湘A12345")
    '电话[手机号]，住[门牌号]，车牌[车牌号]'
    >>> redact("手机１３８１２３４５６７８")
    '手机[手机号]'
    """
    if text is None:
        return ""
    out = str(text)
    plain = not _FULL_WIDTH.search(out)  # no full-width characters: match the text itself
    if not _PII_CHAR.search(out if plain else out.translate(_FOLD)):
        return out
    for label, pattern in _PII_PATTERNS:
        if plain:
            out = pattern.sub(label if placeholder is None else placeholder, out)
            continue
        folded = out.translate(_FOLD)
        parts, last = [], 0
        for m in pattern.finditer(folded):
            parts += [out[last:m.start()], label if placeholder is None else placeholder]
            last = m.end()
        out = "".join(parts) + out[last:]
    return out


# --- Personal names ----------------------------------------------------------------
# Two signals: a name after words that introduce one (我叫, 联系人：, 村民 …) or before a form
# of address (王先生), and the spans jieba's part-of-speech tagger marks as person names
# (nr) that start with a surname and are not common words it also tags so
# (corpora/data/names.txt). Over-redacting a word costs a reader little; a missed name is
# personal data shown.
@lru_cache(maxsize=1)
def _name_rules():
    sections, current = {}, None
    for line in (DATA_DIR / "names.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif current is not None:
            current.append(line)
    surnames = "".join(sections.get("surnames", []))
    not_names = frozenset(w for line in sections.get("not_names", []) for w in line.split())
    place_suffix = frozenset("".join(sections.get("place_suffix", [])))
    place_end = frozenset("".join(sections.get("place_end", [])))
    han = r"[\u4e00-\u9fff·]{2,4}?"
    after = re.compile(r"(我叫|本人叫|名叫|我是(?=[" + surnames + r"])|姓名[:：为是]?|联系人[:：为是]?|"
                       r"投诉人[:：为是]?|反映人[:：为是]?|来电人[:：为是]?|户主[:：为是]?|签名[:：]?|"
                       r"(?:村民|居民|业主|住户|市民|职工|员工|工人|家属|老人|学生|患者|病人)(?=[" + surnames + r"]))\s*"
                       r"(" + han + r")(?=[,，。;；:：\s、!！?？(（\d]|电话|手机|身份|住|家住|反映|投诉|说|称|$)")
    address = re.compile(r"[" + surnames + r"][\u4e00-\u9fff]?(?:先生|女士|小姐|师傅|阿姨|大爷|大妈|老师)")
    return set(surnames), not_names, place_suffix, place_end, after, address


@lru_cache(maxsize=65536)
def _names(text: str) -> tuple[tuple[int, int], ...]:
    """Character spans of personal names in ``text``, sorted, not overlapping."""
    import rjieba

    surnames, not_names, place_suffix, place_end, after, address = _name_rules()
    spans = [m.span(2) for m in after.finditer(text)] + [m.span() for m in address.finditer(text)]
    pos, tokens = 0, rjieba.tag(text)
    i = 0
    while i < len(tokens):
        if tokens[i][1] != "nr":
            pos += len(tokens[i][0])
            i += 1
            continue
        start, j = pos, i
        while j < len(tokens) and tokens[j][1] == "nr":
            pos += len(tokens[j][0])
            j += 1
        if start and text[start - 1] in surnames and text[start] not in surnames and i and len(tokens[i - 1][0]) == 1:
            start -= 1  # a surname jieba split off as another word: 黄 + 海涛
        word = text[start:pos]
        nxt = text[pos:pos + 1]
        place = nxt in place_suffix or (len(word) >= 3 and word[-1] in place_end)
        if 2 <= len(word) <= 4 and word[0] in surnames and word not in not_names and not place:
            spans.append((start, pos))
        i = j
    # a name found once is redacted wherever else it stands in the text ("申请人:X … 我是X")
    for word in {text[a:b] for a, b in spans if b - a >= 2}:
        spans += [m.span() for m in re.finditer(re.escape(word), text)]
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return tuple(merged)


def redact_names(text: str | None, *, placeholder: str = "[姓名]") -> str:
    """:func:`redact`, then personal names replaced by ``placeholder``.

    Examples
    --------
    >>> redact_names("村民张建国反映暖气不热，电话13812345678，王先生说物业不管，谢谢")
    '村民[姓名]反映暖气不热，电话[手机号]，[姓名]说物业不管，谢谢'
    >>> redact_names("向阳路的路灯坏了，联系人：陈晓")
    '向阳路的路灯坏了，联系人：[姓名]'
    """
    out = redact(text)
    if not out:
        return out
    parts, last = [], 0
    for a, b in _names(out):
        parts += [out[last:a], placeholder]
        last = b
    return "".join(parts) + out[last:]


def names_in(texts) -> set[str]:
    """The personal names :func:`redact_names` removes from ``texts`` (to keep them out of
    words drawn from those texts, e.g. a group's summary).

    >>> sorted(names_in(["我叫张伟，暖气不热", "王先生反映"]))
    ['张伟', '王先生']
    """
    out = set()
    for t in texts:
        t = redact(t)
        out.update(t[a:b] for a, b in _names(t))
    return out


# --- Segmentation ----------------------------------------------------------------
# jieba's algorithm and dictionary through rjieba (the jieba-rs port): the same
# segmentation, ~25x faster than the pure-Python package (docs/adr/0001-stack.md).
_TOKENIZER = None
_TOKENIZER_LOCK = threading.Lock()


def _tokenizer():
    global _TOKENIZER
    if _TOKENIZER is None:
        with _TOKENIZER_LOCK:
            if _TOKENIZER is None:
                import rjieba

                tok = rjieba.Jieba()
                for n, line in enumerate((DATA_DIR / "userdict.txt").read_text(encoding="utf-8").splitlines(), 1):
                    parts = line.split()
                    if not parts:
                        continue
                    if len(parts) != 3 or not parts[1].isdigit():
                        raise ValueError(f"userdict.txt:{n}: expected 'word frequency tag', got {line!r}")
                    tok.add_word(parts[0], int(parts[1]), parts[2])
                _TOKENIZER = tok
    return _TOKENIZER


_TOKEN_KEEP = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")


def tokenize(text: str) -> list[str]:
    """Segment normalised text into words (jieba, with the domain dictionary).

    Punctuation and whitespace tokens are dropped; digits are kept.

    Examples
    --------
    >>> tokenize("小区物业不管暖气")
    ['小区', '物业', '不管', '暖气']
    """
    return [w for w in _tokenizer().cut(text) if w.isalnum() or _TOKEN_KEEP.search(w)]


# --- Negation -----------------------------------------------------------------------
NEGATION_WINDOW = 4  # characters before a term searched for a negation word
_CLAUSE_BREAK = re.compile(r"[,，。.!！?？;；:：\s]")


@lru_cache(maxsize=1)
def _negation():
    words = [w.strip() for w in (DATA_DIR / "negation.txt").read_text(encoding="utf-8").splitlines() if w.strip()]
    return re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)))


def is_negated(text: str, start: int) -> bool:
    """True when a negation word (``corpora/data/negation.txt``) stands just before ``start``
    in the same clause.

    Examples
    --------
    >>> t = "经检查没有燃气泄漏，但是有煤气味"
    >>> is_negated(t, t.index("燃气")), is_negated(t, t.index("煤气"))
    (True, False)
    """
    window = _CLAUSE_BREAK.split(text[max(0, start - NEGATION_WINDOW):start])[-1]
    return bool(_negation().search(window))
