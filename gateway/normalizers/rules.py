"""Configurable rules: kind, routing hints, abusive language. Loaded from files an office edits
(``GATEWAY_NORMALIZER_RULES``, ``GATEWAY_ABUSIVE_WORDS``); defaults in ``rules/``."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from itertools import compress, count
from pathlib import Path

import ahocorasick

from gateway.errors import ConfigurationError
from gateway.events.complaint import Kind, RoutingHint

RULES_DIR = Path(__file__).with_name("rules")
DEFAULT_RULES = RULES_DIR / "default.toml"
DEFAULT_ABUSIVE_WORDS = RULES_DIR / "abusive-words.txt"


_COMBINING_MARKS = re.compile(
    r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+"
)


def fold(text: str) -> str:
    """Lower case without accents: what the rules' patterns are written against."""
    lowered = text.casefold().replace("œ", "oe").replace("æ", "ae")
    return _COMBINING_MARKS.sub("", unicodedata.normalize("NFKD", lowered))


_LITERAL = re.compile(r"[a-z0-9 '\-]+")
_QUANTIFIERS = ("?", "*", "{", "+")


def literal_anchors(pattern: str) -> tuple[str, ...] | None:
    """The texts one of which every match of ``pattern`` starts with, or None if unknown.

    Known for a pattern that begins (after ``\\b``) with a literal, or with a group of literal
    alternatives: ``\\bplainte``, ``\\b(?:college|ordre) des``. Python's ``re`` would try such
    a pattern at every position of a 2 KB text; finding the anchors (``PatternIndex``) and
    matching only there is some ten times faster.
    """
    body = pattern
    while body.startswith("\\b"):
        body = body[2:]
    if body.startswith("(?:"):
        group_end = body.find(")")
        alternatives = body[3:group_end].split("|")
        if (
            group_end < 0
            or "(" in body[3:group_end]
            or body[group_end + 1 : group_end + 2] in _QUANTIFIERS
        ):
            return None
        prefixes = tuple(_leading_literal(alternative) for alternative in alternatives)
        return prefixes if all(len(prefix) >= 2 for prefix in prefixes) else None
    literal = _leading_literal(body)
    if "|" in _top_level(body):
        return None
    return (literal,) if len(literal) >= 2 else None


def _leading_literal(pattern: str) -> str:
    """The plain text a pattern starts with (less a last character made optional)."""
    literal = match.group(0) if (match := _LITERAL.match(pattern)) else ""
    if pattern[len(literal) : len(literal) + 1] in _QUANTIFIERS:
        literal = literal[:-1]
    return literal


def required_literal(pattern: str) -> str | None:
    """The longest plain text every match of ``pattern`` contains (at least 3 characters), or
    None: ``\\bj.aimerais savoir`` -> ``aimerais savoir``. Only text outside groups and
    character classes counts, none of a pattern with a top-level alternative, and a character
    under a quantifier is left out. ``text in folded`` is a scan in C: a pattern without anchors
    is searched only in a text that holds its required text."""
    runs, run, depth, position = [], "", 0, 0
    while position < len(pattern):
        character = pattern[position]
        if depth == 0 and character in _PLAIN:
            run, position = run + character, position + 1
            continue
        if depth == 0 and character == "|":
            return None
        runs.append(run[:-1] if character in _QUANTIFIERS else run)
        run = ""
        position = _after_token(pattern, position)
        depth += {"(": 1, ")": -1}.get(character, 0)
    runs.append(run)
    longest = max(runs, key=len)
    return longest if len(longest) >= 3 else None


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789 '-")


def _after_token(pattern: str, position: int) -> int:
    """Where the token at ``position`` ends: an escape, a character class, a repeat count, or
    one character."""
    character = pattern[position]
    if character == "\\":
        return position + 2
    if character == "{":
        end = pattern.find("}", position)
        return end + 1 if end >= 0 else len(pattern)
    if character != "[":
        return position + 1
    position += 1
    position += pattern.startswith("^", position)
    position += pattern.startswith("]", position)  # a "]" first is a member, not the end
    while position < len(pattern):
        if pattern[position] == "\\":
            position += 2
        elif pattern[position] == "]":
            return position + 1
        else:
            position += 1
    return position


def _top_level(pattern: str) -> str:
    """The characters of ``pattern`` outside any group."""
    depth, kept = 0, []
    for character in pattern:
        depth += {"(": 1, ")": -1}.get(character, 0)
        if depth == 0:
            kept.append(character)
    return "".join(kept)


class PatternIndex:
    """Every pattern of the rules, each owned by one rule, searched in one pass over a text.

    The anchors of all patterns go into one Aho-Corasick automaton (pyahocorasick): one scan
    finds where each occurs, and a pattern is tried only there (``re.match`` at the anchor),
    until its rule has fired. A pattern without anchors is searched the ordinary way, only in
    a text that holds its ``required_literal``.
    """

    def __init__(self, patterns: list[tuple[re.Pattern[str], int]]) -> None:
        self._patterns = tuple(pattern for pattern, _ in patterns)
        self._owners = tuple(owner for _, owner in patterns)
        self._automaton = ahocorasick.Automaton()
        by_anchor: dict[str, list[int]] = {}
        unanchored = []
        for index, pattern in enumerate(self._patterns):
            anchors = literal_anchors(pattern.pattern)
            if anchors is None:
                unanchored.append((index, required_literal(pattern.pattern) or ""))
            for anchor in anchors or ():
                by_anchor.setdefault(anchor, []).append(index)
        for anchor, indexes in by_anchor.items():
            self._automaton.add_word(anchor, (len(anchor), tuple(indexes)))
        self._automaton.make_automaton()
        self._anchored = bool(by_anchor)
        self._unanchored = tuple(unanchored)

    def owners_matching(self, folded: str) -> set[int]:
        """The owners (rule numbers) of the patterns that match somewhere in ``folded``."""
        fired: set[int] = set()
        patterns, owners = self._patterns, self._owners
        for index, required in self._unanchored:
            if owners[index] in fired or required not in folded:
                continue
            if patterns[index].search(folded):
                fired.add(owners[index])
        if not self._anchored:
            return fired
        for end, (length, indexes) in self._automaton.iter(folded):
            for index in indexes:
                if owners[index] not in fired and patterns[index].match(folded, end - length + 1):
                    fired.add(owners[index])
        return fired


def compile_patterns(patterns: list[str], where: str) -> tuple[re.Pattern[str], ...]:
    try:
        return tuple(re.compile(pattern) for pattern in patterns)
    except re.error as exc:
        raise ConfigurationError(f"{where}: invalid pattern: {exc}") from None


@dataclass(frozen=True)
class KindRule:
    id: str
    kind: Kind
    weight: int
    patterns: tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class RoutingRule:
    id: str
    body: str
    patterns: tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class RuleOutcome:
    """What the rules say of one text."""

    kind: Kind
    fired: list[str]  # the ids of the kind rules that matched, in file order
    routing: list[RoutingHint]


@dataclass(frozen=True)
class RuleSet:
    kind_rules: tuple[KindRule, ...]
    routing_rules: tuple[RoutingRule, ...]
    min_score: int
    priority: tuple[Kind, ...]
    abusive: AbusiveWords
    index: PatternIndex = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rules: tuple[KindRule | RoutingRule, ...] = (*self.kind_rules, *self.routing_rules)
        owned = [(pattern, owner) for owner, rule in enumerate(rules) for pattern in rule.patterns]
        object.__setattr__(self, "index", PatternIndex(owned))

    def evaluate(self, folded: str) -> RuleOutcome:
        """Kind, fired kind rules and routing hints of a folded text, in one pass."""
        fired = self.index.owners_matching(folded)
        kinds = len(self.kind_rules)
        matched = [rule for number, rule in enumerate(self.kind_rules) if number in fired]
        routing = [
            RoutingHint(body=rule.body, rule=rule.id)
            for number, rule in enumerate(self.routing_rules, start=kinds)
            if number in fired
        ]
        return RuleOutcome(self._kind_of(matched), [rule.id for rule in matched], routing)

    def classify(self, folded: str) -> tuple[Kind, list[str]]:
        """The kind of a folded text and the ids of the rules that fired."""
        outcome = self.evaluate(folded)
        return outcome.kind, outcome.fired

    def routing(self, folded: str) -> list[RoutingHint]:
        return self.evaluate(folded).routing

    def is_abusive(self, folded: str) -> bool:
        return self.abusive.found_in(folded)

    def _kind_of(self, matched: list[KindRule]) -> Kind:
        scores: dict[Kind, int] = {}
        for rule in matched:
            scores[rule.kind] = scores.get(rule.kind, 0) + rule.weight
        ranked = sorted(scores, key=lambda kind: (-scores[kind], self._rank(kind)))
        if ranked and scores[ranked[0]] >= self.min_score:
            return ranked[0]
        return Kind.UNKNOWN

    def _rank(self, kind: Kind) -> int:
        return self.priority.index(kind) if kind in self.priority else len(self.priority)


def load_rules(rules_file: Path | None = None, words_file: Path | None = None) -> RuleSet:
    """Read the rule files; ConfigurationError naming the file and rule when one is wrong."""
    path = rules_file or DEFAULT_RULES
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        kinds = tuple(
            KindRule(
                r["id"],
                Kind(r["kind"]),
                int(r.get("weight", 1)),
                compile_patterns(r["patterns"], f"{path}: {r['id']}"),
            )
            for r in data.get("kind", [])
        )
        routes = tuple(
            RoutingRule(r["id"], r["body"], compile_patterns(r["patterns"], f"{path}: {r['id']}"))
            for r in data.get("routing", [])
        )
        settings = data.get("kind_settings", {})
        priority = tuple(Kind(name) for name in settings.get("priority", []))
    except (OSError, tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
        raise ConfigurationError(f"normalizer rules {path}: {exc}") from None
    return RuleSet(
        kinds,
        routes,
        int(settings.get("min_score", 1)),
        priority,
        load_abusive_words(words_file or DEFAULT_ABUSIVE_WORDS),
    )


_WORD = re.compile(r"\w+")
_ASCII_WORD = re.compile(r"\w+", re.ASCII)  # the same words in an ASCII text, found sooner


def words_of(folded: str) -> list[str]:
    """The words of a folded text, as the abusive words and the duplicate shingles see them."""
    return (_ASCII_WORD if folded.isascii() else _WORD).findall(folded)


@dataclass(frozen=True)
class AbusiveWords:
    """Words and phrases matched as whole words: one pass over the text's words, whatever the
    length of the list (an alternation of 50 phrases costs Python's ``re`` 50 tries a position).
    A phrase is looked up only where a text's word starts one and the next word follows it.
    """

    phrases: frozenset[tuple[str, ...]]
    single_words: frozenset[str]
    first_words: frozenset[str]
    sizes_by_opening: dict[tuple[str, ...], tuple[int, ...]]  # first two words -> lengths

    @classmethod
    def of(cls, phrases: frozenset[tuple[str, ...]]) -> AbusiveWords:
        longer = [phrase for phrase in phrases if len(phrase) > 1]
        sizes: dict[tuple[str, ...], set[int]] = {}
        for phrase in longer:
            sizes.setdefault(phrase[:2], set()).add(len(phrase))
        return cls(
            phrases=phrases,
            single_words=frozenset(phrase[0] for phrase in phrases if len(phrase) == 1),
            first_words=frozenset(phrase[0] for phrase in longer),
            sizes_by_opening={opening: tuple(sorted(n)) for opening, n in sizes.items()},
        )

    def found_in(self, folded: str) -> bool:
        return self.found_in_words(words_of(folded))

    def found_in_words(self, words: list[str]) -> bool:
        """``found_in`` for a text already split by ``words_of``."""
        if not self.single_words.isdisjoint(words):
            return True
        starts = compress(count(), map(self.first_words.__contains__, words))  # a loop in C
        return any(
            tuple(words[start : start + size]) in self.phrases
            for start in starts
            for size in self.sizes_by_opening.get(tuple(words[start : start + 2]), ())
        )


def load_abusive_words(path: Path) -> AbusiveWords:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigurationError(f"abusive words {path}: {exc}") from None
    phrases = frozenset(
        tuple(words_of(fold(line)))
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    )
    phrases = frozenset(phrase for phrase in phrases if phrase)
    return AbusiveWords.of(phrases)
