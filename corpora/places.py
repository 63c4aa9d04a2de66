"""Places named in appeal text: district, street or town, road, and named places.

Rules are data (``corpora/data/place_patterns.csv``): one row per kind with its level of
detail (0 city, 1 district/county, 2 street office/town, 3 road, 4 named place such as a
小区, 村, school, hospital, market or park) and a regex, where ``{N}`` stands for the
characters a name may hold (anything but punctuation and the ``boundary`` characters,
which end a name on its left) and the group ``(?P<s>…)`` holds the suffix. Matched names lose a leading ``prefix`` word (投诉, 关于 …),
anything up to the last ``breaker`` word in them (verbs that never stand inside a name:
"…油烟排入小区" names no 小区) and anything up to the last city/district/town in them ("A市A2区暮云街道丽发新城" →
"丽发新城"); a name, or its stem before the suffix, in the ``generic`` list (住宅小区,
马路, a bare 医院 …) is not a place. A housing estate (a suffix of the ``estate`` row) loses
the road its name begins with (``located``): 劳动东路魅力之城小区 is 魅力之城小区, as its
neighbours call it, while 中山路小学 keeps its road.

A *gazetteer* (a city's own list of place names) can be given: its names are found
verbatim and win over pattern matches of the same level.

The most specific place is the one of the highest level; among those, the one named most
often, then the first named.
"""
from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from corpora.rules import RuleFileError, rule_pattern, rule_rows
from corpora.text import DATA_DIR, normalise

__all__ = ["Place", "PlaceMatch", "Gazetteer", "find_places", "place_key", "load_gazetteer", "LEVELS"]

LEVELS = {"city": 0, "district": 1, "township": 2, "road": 3, "place": 4}
_UNIT = re.compile(r"[A-Z]\d*[市区县]|(?<![小社园景校城超菜夜股])(?:[区县]|市(?!民))|[镇乡省]|街道办事处|街道办|街道")  # admin units (not 市民)
_KEY_SUFFIX = re.compile(r"(?:小区|社区)$")
_SETTINGS = {"boundary", "prefix", "generic", "located", "estate", "breaker"}  # rows that are not a kind of place


@dataclass(frozen=True)
class Place:
    """A place named in a text: its name, kind (``district``, ``road``, ``place`` …), level and span."""

    name: str
    kind: str
    level: int
    start: int
    end: int


class PlaceMatch(NamedTuple):
    best: Place | None  # the most specific place named (None when none is)
    places: list[Place]  # every place found, in text order
    district: str | None  # the given district, else the first one named


@dataclass(frozen=True)
class _Rules:
    patterns: list[tuple[str, int, re.Pattern]]
    prefix: re.Pattern
    generic: frozenset
    located: re.Pattern | None = None  # a road a housing estate's name begins with (劳动东路魅力之城小区)
    estates: re.Pattern | None = None  # the suffixes of housing estates
    breaker: re.Pattern | None = None  # words a name never holds: it begins after the last of them


@lru_cache(maxsize=4)
def _rules(path: Path | None = None) -> _Rules:
    path = Path(path) if path else DATA_DIR / "place_patterns.csv"
    raw: dict[str, list[tuple[int, dict]]] = {}
    for line, row in rule_rows(path):
        kind = (row.get("kind") or "").strip()
        if kind not in LEVELS and kind not in _SETTINGS:
            raise RuleFileError(f"{path}:{line}: unknown kind {kind!r}; expected one of "
                                f"{sorted(LEVELS) + sorted(_SETTINGS)}")
        raw.setdefault(kind, []).append((line, row))
    for needed in ("boundary", "prefix", "generic"):
        if len(raw.get(needed, [])) != 1:
            raise RuleFileError(f"{path}: needs exactly one '{needed}' row")
    for optional in ("located", "estate", "breaker"):
        if len(raw.get(optional, [])) > 1:
            raise RuleFileError(f"{path}: needs at most one '{optional}' row")
    boundary = raw["boundary"][0][1]["pattern"].strip()
    name_chars = "[^\\W_" + re.escape(boundary) + "]"
    patterns = []
    for kind in LEVELS:
        for line, row in raw.get(kind, []):
            try:
                level = int(row["level"])
            except (TypeError, ValueError):
                raise RuleFileError(f"{path}:{line}: level must be an integer, got {row['level']!r}") from None
            if level != LEVELS[kind]:
                raise RuleFileError(f"{path}:{line}: kind {kind!r} has level {LEVELS[kind]}, got {level}")
            pattern = rule_pattern(path, line, kind, row["pattern"].replace("{N}", name_chars))
            if "s" not in pattern.groupindex:
                raise RuleFileError(f"{path}:{line}: the {kind!r} pattern needs a group (?P<s>...) around its suffix")
            patterns.append((kind, level, pattern))
    prefix_line, prefix_row = raw["prefix"][0]
    prefix = rule_pattern(path, prefix_line, "prefix", f"^(?:{prefix_row['pattern'].strip()})+")
    generic = frozenset(w.strip() for w in raw["generic"][0][1]["pattern"].split("|") if w.strip())
    located = estates = None
    if raw.get("located") and raw.get("estate"):
        (l_line, l_row), (e_line, e_row) = raw["located"][0], raw["estate"][0]
        located = rule_pattern(path, l_line, "located", f"^(?:{l_row['pattern'].strip()})")
        estates = rule_pattern(path, e_line, "estate", f"^(?:{e_row['pattern'].strip()})")
    breaker = None
    if raw.get("breaker"):
        b_line, b_row = raw["breaker"][0]
        breaker = rule_pattern(path, b_line, "breaker", b_row["pattern"].strip())
    return _Rules(patterns, prefix, generic, located, estates, breaker)


class Gazetteer:
    """A city's place names, found verbatim in text (longest name first).

    ``names`` maps each name to its kind (``place`` by default, or any of :data:`LEVELS`).

    Examples
    --------
    >>> g = Gazetteer({"五矿万境": "place", "暮云街道": "township"})
    >>> [p.name for p in find_places("五矿万境业主反映物业问题", gazetteer=g).places]
    ['五矿万境']
    """

    def __init__(self, names: dict[str, str]):
        self.names = {}
        for name, kind in names.items():
            name = normalise(name)
            kind = kind or "place"
            if kind not in LEVELS:
                raise ValueError(f"gazetteer kind for {name!r} must be one of {sorted(LEVELS)}, got {kind!r}")
            if len(name) >= 2:
                self.names[name] = kind
        alternation = "|".join(re.escape(n) for n in sorted(self.names, key=len, reverse=True))
        self.pattern = re.compile(alternation) if alternation else None

    def find(self, text: str) -> list[Place]:
        if self.pattern is None:
            return []
        return [Place(m.group(), self.names[m.group()], LEVELS[self.names[m.group()]], m.start(), m.end())
                for m in self.pattern.finditer(text)]


def load_gazetteer(path) -> Gazetteer:
    """Read a gazetteer: a CSV with a ``name`` column (and optionally ``kind``), or a text
    file with one name per line."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such gazetteer file")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if rows and "name" not in rows[0]:
            raise ValueError(f"{path}: a gazetteer CSV needs a 'name' column")
        return Gazetteer({r["name"]: (r.get("kind") or "place").strip() for r in rows if r.get("name")})
    return Gazetteer({ln.strip(): "place" for ln in text.splitlines() if ln.strip() and not ln.startswith("#")})


_MIN_STEM = {"city": 1, "district": 1, "township": 2, "road": 1, "place": 2}


def _clean(name: str, suffix: str, kind: str, rules: _Rules) -> str | None:
    if kind in ("township", "road", "place"):
        # cut up to the last admin unit that leaves a two-character name and a suffix
        ends = [m.end() for m in _UNIT.finditer(name) if len(name) - m.end() >= 3]
        if ends:
            name = name[ends[-1]:]
        if rules.breaker is not None:  # "餐馆导致大量油烟排入小区" is no name: cut after 排入 it is 小区
            cuts = [m.end() for m in rules.breaker.finditer(name, 0, len(name) - len(suffix))]
            if cuts:
                name = name[cuts[-1]:]
    stripped = rules.prefix.sub("", name)
    if len(stripped) >= 2:
        name = stripped
    if kind == "place" and rules.located is not None and rules.estates.match(suffix):
        # the road a housing estate's name begins with is where it is, not its name (schools
        # and hospitals are often named after their road, 中山路小学, and keep it)
        m = rules.located.match(name)
        if m and len(name) - m.end() - len(suffix) >= 2 and name[m.end():] not in rules.generic \
                and name[m.end():len(name) - len(suffix)] not in rules.generic:
            name = name[m.end():]
    stem = name[:len(name) - len(suffix)]
    if name in rules.generic or stem in rules.generic or len(stem) < _MIN_STEM[kind]:
        return None
    return name


def find_places(text: str, *, district: str | None = None, gazetteer: Gazetteer | None = None,
                rules_path=None, normalised: bool = False) -> PlaceMatch:
    """Places named in ``text`` and the most specific of them.

    ``district``: the appeal's district when the data gives one (it is then the
    ``district`` of the result, and a place of level 1 when the text names none).

    Examples
    --------
    >>> m = find_places("投诉A市A3区洋湖街道幸福里小区停水三天")
    >>> m.best.name, m.best.kind, m.district
    ('幸福里小区', 'place', 'A3区')
    >>> [(p.name, p.kind) for p in m.places]
    [('A市', 'city'), ('A3区', 'district'), ('洋湖街道', 'township'), ('幸福里小区', 'place')]
    >>> find_places("阳光花园小区门口的解放路上积水").best.name
    '阳光花园小区'
    >>> find_places("住宅小区的马路上很乱").best is None
    True
    """
    rules = _rules(Path(rules_path) if rules_path else None)
    if not normalised:
        text = normalise(text)
    found: list[Place] = []
    taken: list[tuple[int, int, int]] = []
    if gazetteer is not None:
        for p in gazetteer.find(text):
            found.append(p)
            taken.append((p.start, p.end, p.level))
    for kind, level, pattern in rules.patterns:
        for m in pattern.finditer(text):
            name = _clean(m.group(), m.group("s"), kind, rules)
            if name is None:
                continue
            start = m.end() - len(name)
            # a gazetteer name covering this span at the same or a finer level wins
            if any(s <= start and m.end() <= e and lv >= level for s, e, lv in taken):
                continue
            found.append(Place(name, kind, level, start, m.end()))
    found.sort(key=lambda p: (p.start, -p.level))
    given = normalise(district) if district else None
    named_district = next((p.name for p in found if p.kind == "district"), None)
    best = None
    if found:
        top = max(p.level for p in found)
        counts = Counter(place_key(p.name) for p in found if p.level == top)
        best = max((p for p in found if p.level == top), key=lambda p: (counts[place_key(p.name)], -p.start))
    elif given:
        best = Place(given, "district", LEVELS["district"], -1, -1)
    return PlaceMatch(best, found, given or named_district)


def place_key(name: str | None) -> str | None:
    """The name places are compared by: "阳光花园小区", "阳光花园社区" and "阳光花园" are one place.

    >>> place_key("阳光花园小区"), place_key("幸福里社区"), place_key("新村社区")
    ('阳光花园', '幸福里', '新村')
    """
    if not name:
        return None
    short = _KEY_SUFFIX.sub("", name)
    return short if len(short) >= 2 else name
