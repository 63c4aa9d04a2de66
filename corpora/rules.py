"""Rules as data: routing table (category/topic → department), loaded and checked once.

Files live in ``corpora/data/``; a change of department is a data edit, not a code change.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from corpora.text import DATA_DIR, is_negated

__all__ = ["RuleFileError", "RoutingRule", "Router", "load_router", "default_router", "rule_rows", "rule_pattern"]


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

    @property
    def categories(self) -> list[str]:
        """The first-level categories this city routes: the ones Suqiu may be trained on."""
        return list(self.default)

    def route(self, category: str, text: str) -> tuple[str | None, str | None]:
        best, best_hits = None, 0
        for rule in self.topics:
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
