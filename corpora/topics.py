"""Topics finer than the 7 categories (heating sits inside 城乡建设), as data.

``corpora/data/topics.csv``: topic, category, official second level, keywords (regex
alternation), whether the topic is expected to be seasonal, and the public holidays its
seasons may follow (``anchors``; the Spring Festival moves by weeks from year to year).
Assignment is by lexicon (negation-aware), optionally restricted to the appeal's category.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from corpora.rules import PatternSet, RuleFileError, rule_pattern, rule_rows
from corpora.text import DATA_DIR, is_negated, normalise

__all__ = ["Topic", "TopicLexicon", "load_topics", "default_topics"]


@dataclass(frozen=True)
class Topic:
    name: str
    category: str
    level2: str
    pattern: re.Pattern
    seasonal: bool
    anchors: tuple[tuple[str, int], ...] = ()  # (holiday, most days from it) a season may follow


class TopicLexicon:
    """Assign appeals to topics.

    Examples
    --------
    >>> lex = default_topics()
    >>> lex.assign("小区暖气不热，物业不管")
    ['冬季采暖', '物业管理']
    >>> lex.assign("导游强制购物", category="商贸旅游")
    ['旅游市场管理']
    >>> lex.assign("经检查没有停电")
    []
    """

    def __init__(self, topics: list[Topic]):
        self.topics = topics
        self.by_name = {t.name: t for t in topics}
        self._patterns = PatternSet([t.pattern for t in topics])

    def assign(self, text: str, category: str | None = None) -> list[str]:
        text = normalise(text)
        out = []
        for t in self.topics:
            if category is not None and t.category != category:
                continue
            if any(not is_negated(text, m.start()) for m in t.pattern.finditer(text)):
                out.append(t.name)
        return out

    def assign_many(self, texts, *, normalised: bool = False) -> list[list[str]]:
        """:meth:`assign` for each of ``texts`` (no category), the same lists, faster: one
        Vectorscan pass per text says which topics' keywords occur at all
        (:class:`corpora.rules.PatternSet`), and only those are checked for negation.
        ``normalised``: the texts are :func:`corpora.text.normalise`-d already (and are
        matched as they are).

        Examples
        --------
        >>> default_topics().assign_many(["小区暖气不热，物业不管", "经检查没有停电"])
        [['冬季采暖', '物业管理'], []]
        """
        out = []
        for text in texts:
            if not normalised:
                text = normalise(text)
            found = []
            for i in self._patterns.candidates(text):
                t = self.topics[i]
                if any(not is_negated(text, m.start()) for m in t.pattern.finditer(text)):
                    found.append(t.name)
            out.append(found)
        return out

    def terms(self) -> set[str]:
        """Every literal keyword, to tell known topics from emerging terms."""
        words = set()
        for t in self.topics:
            for part in t.pattern.pattern.split("|"):
                if re.fullmatch(r"[\u4e00-\u9fffA-Za-z0-9]+", part):
                    words.add(part)
        return words


def load_topics(path: Path | str = DATA_DIR / "topics.csv") -> TopicLexicon:
    path = Path(path)
    topics = []
    for i, row in rule_rows(path):
        pattern = rule_pattern(path, i, row["topic"], row["keywords"])
        if row["seasonal"] not in {"yes", "no"}:
            raise RuleFileError(f"{path}:{i}: seasonal must be yes or no")
        topics.append(Topic(row["topic"], row["category"], row["level2"], pattern, row["seasonal"] == "yes",
                            _anchors(path, i, row.get("anchors") or "")))
    return TopicLexicon(topics)


def _anchors(path: Path, line: int, field: str) -> tuple[tuple[str, int], ...]:
    """``春节:70|国庆节:10`` -> (("春节", 70), ("国庆节", 10)): the public holidays a season
    of the topic may follow, each with the most days between the holiday and the onset."""
    from corpora.holidays import holiday_starts

    out = []
    for part in filter(None, field.split("|")):
        name, _, days = part.partition(":")
        if name not in holiday_starts() or not days.isdigit():
            raise RuleFileError(f"{path}:{line}: anchors must read like 春节:70|国庆节:10 "
                                f"(holidays: {'、'.join(holiday_starts())}); got {part!r}")
        out.append((name, int(days)))
    return tuple(out)


@lru_cache(maxsize=1)
def default_topics() -> TopicLexicon:
    return load_topics()
