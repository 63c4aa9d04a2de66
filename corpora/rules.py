"""Rules as data: routing table (category/topic → department), loaded and checked once.

Files live in ``corpora/data/``; a change of department is a data edit, not a code change.
"""
from __future__ import annotations

import csv
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from corpora.text import DATA_DIR, is_negated

__all__ = ["RuleFileError", "RoutingRule", "Router", "load_router", "default_router", "rule_rows", "rule_pattern",
           "PatternSet"]


class RuleFileError(ValueError):
    """A rules file is malformed; the message names the file, row and field."""


def rule_rows(path: Path):
    """Yield (line number, row) of a rules CSV, refusing rows with more fields than columns."""
    with open(path, encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh), 2):
            if None in row:
                raise RuleFileError(f"{path}:{i}: more fields than columns; quote a field that contains a comma")
            yield i, row


def rule_pattern(path: Path, line: int, name: str, pattern: str) -> re.Pattern:
    """Compile a rule's regex, naming the file, line and rule when it is invalid."""
    try:
        return re.compile(pattern)
    except re.error as err:
        raise RuleFileError(f"{path}:{line}: {name!r} has an invalid pattern ({err})") from None


class PatternSet:
    """Which of several regexes can match in a text, found in one pass over it.

    Rule files hold dozens of patterns; running Python's ``re`` for each over every
    appeal cost ~200 µs per median appeal, nearly all of it for patterns that do not
    occur. The patterns are compiled together into one Vectorscan database (the
    ``hyperscan`` package), which reports in one scan, ~8 µs, which patterns occur at all;
    callers then run ``re`` only for those, so spans and semantics stay Python's. A
    pattern Vectorscan cannot take (look-arounds, back-references, one that can match
    the empty string) is simply always a candidate. Not pickled: rebuilt on first use.

    Examples
    --------
    >>> ps = PatternSet([re.compile("煤气味|漏气"), re.compile("(?<=没)有"), re.compile("暖气")])
    >>> ps.candidates("楼道里有煤气味")  # the look-behind cannot be prefiltered: always a candidate
    [0, 1]
    """

    def __init__(self, patterns: list[re.Pattern]):
        self.patterns = list(patterns)
        self._state = None
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"patterns": self.patterns}

    def __setstate__(self, state):
        self.__init__(state["patterns"])

    def _build(self):
        import hyperscan

        base = hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_UCP | hyperscan.HS_FLAG_SINGLEMATCH
        extra = {re.IGNORECASE: hyperscan.HS_FLAG_CASELESS, re.DOTALL: hyperscan.HS_FLAG_DOTALL,
                 re.MULTILINE: hyperscan.HS_FLAG_MULTILINE}
        known = re.UNICODE | sum(extra)
        scanned, flags, always = [], [], []
        for i, p in enumerate(self.patterns):
            f = base | sum(hs for py, hs in extra.items() if p.flags & py)
            ok = not (p.flags & ~known) and isinstance(p.pattern, str)
            if ok:
                try:  # each on its own, so one Vectorscan refuses is only that one's loss
                    hyperscan.Database().compile(expressions=[p.pattern.encode()], ids=[i], elements=1, flags=[f])
                except hyperscan.error:
                    ok = False
            if ok:
                scanned.append(i)
                flags.append(f)
            else:
                always.append(i)
        db = None
        if scanned:
            db = hyperscan.Database()
            db.compile(expressions=[self.patterns[i].pattern.encode() for i in scanned], ids=scanned,
                       elements=len(scanned), flags=flags)
        return db, always, threading.local()

    def candidates(self, text: str) -> list[int]:
        """Indices (ascending) of the patterns that may match ``text``; the others cannot."""
        if self._state is None:
            with self._lock:
                if self._state is None:
                    self._state = self._build()
        db, always, local = self._state
        if db is None:
            return list(always)
        scratch = getattr(local, "scratch", None)
        if scratch is None:  # a scratch space per thread: the service tags in a thread pool
            import hyperscan

            scratch = local.scratch = hyperscan.Scratch(db)
        found = list(always)
        db.scan(text.encode(), match_event_handler=lambda i, *_: found.append(i), scratch=scratch)
        return sorted(found)


@dataclass(frozen=True)
class RoutingRule:
    category: str
    topic: str | None
    department: str
    pattern: re.Pattern | None


class Router:
    """Map a category (and, where keywords match, a second-level topic) to a department.

    Examples
    --------
    >>> r = load_router()
    >>> r.route("城乡建设", "小区暖气不热")
    ('市城市管理局(供热办)', '冬季采暖')
    >>> r.route("城乡建设", "路灯不亮，经检查没有燃气泄漏")
    ('市住房和城乡建设局', None)
    """

    def __init__(self, rules: list[RoutingRule]):
        self.rules = rules
        self.default = {r.category: r.department for r in rules if r.topic is None}
        self.topics = [r for r in rules if r.topic is not None]
        self._topic_patterns = PatternSet([r.pattern for r in self.topics])

    @property
    def categories(self) -> list[str]:
        """The first-level categories this city routes: the ones Suqiu may be trained on."""
        return list(self.default)

    def with_categories(self, extra: dict[str, str] | None) -> "Router":
        """This router plus the categories an admin added to the city's catalogue.

        ``extra`` maps each new category to its department; it is routed to that
        department (no second-level topics). A category the routing data already has keeps
        its department (the file is the city's rules), so the same call is safe on every
        start. Returns ``self`` when nothing is new.

        Examples
        --------
        >>> r = load_router().with_categories({"城市更新": "市城市更新局", "城乡建设": "别处"})
        >>> r.route("城市更新", "老旧小区改造进度")
        ('市城市更新局', None)
        >>> r.route("城乡建设", "路灯不亮")[0], r.categories[-1]
        ('市住房和城乡建设局', '城市更新')
        """
        new = {c: d for c, d in (extra or {}).items() if c not in self.default}
        if not new:
            return self
        return Router(self.rules + [RoutingRule(c, None, d, None) for c, d in new.items()])

    def topic_categories(self, text: str) -> set[str]:
        """The categories whose topic keywords occur in ``text`` (not negated): what the
        routing data alone says the appeal is about, whatever the model predicted.

        >>> sorted(load_router().topic_categories("小区暖气不热，没有燃气泄漏"))
        ['城乡建设']
        """
        found = set()
        for i in self._topic_patterns.candidates(text):
            rule = self.topics[i]
            if rule.category not in found and any(not is_negated(text, m.start())
                                                  for m in rule.pattern.finditer(text)):
                found.add(rule.category)
        return found

    def route(self, category: str, text: str) -> tuple[str | None, str | None]:
        best, best_hits = None, 0
        for i in self._topic_patterns.candidates(text):
            rule = self.topics[i]
            if rule.category != category:
                continue
            hits = sum(1 for m in rule.pattern.finditer(text) if not is_negated(text, m.start()))
            if hits > best_hits:
                best, best_hits = rule, hits
        if best is not None:
            return best.department, best.topic
        return self.default.get(category), None


def load_router(path: Path | str = DATA_DIR / "routing.csv") -> Router:
    path = Path(path)
    rules = []
    for i, row in rule_rows(path):
        cat, topic, dept = row["category"].strip(), row["topic"].strip(), row["department"].strip()
        kw = row["keywords"].strip()
        if not cat or not dept:
            raise RuleFileError(f"{path}:{i}: category and department are required")
        if topic and not kw:
            raise RuleFileError(f"{path}:{i}: topic '{topic}' needs keywords (| separated)")
        pattern = re.compile("|".join(re.escape(k) for k in kw.split("|") if k)) if kw else None
        rules.append(RoutingRule(cat, topic or None, dept, pattern))
    defaults = {r.category for r in rules if r.topic is None}
    orphans = sorted({r.category for r in rules} - defaults)
    if orphans:
        raise RuleFileError(f"{path}: categories {orphans} have topics but no default department row")
    return Router(rules)


@lru_cache(maxsize=1)
def default_router() -> Router:
    return load_router()
