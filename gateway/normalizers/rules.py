"""Configurable rules: kind, routing hints, abusive language. Loaded from files an office edits
(``GATEWAY_NORMALIZER_RULES``, ``GATEWAY_ABUSIVE_WORDS``); defaults in ``rules/``."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ConfigurationError
from gateway.events.complaint import Kind, RoutingHint

RULES_DIR = Path(__file__).with_name("rules")
DEFAULT_RULES = RULES_DIR / "default.toml"
DEFAULT_ABUSIVE_WORDS = RULES_DIR / "abusive-words.txt"


def fold(text: str) -> str:
    """Lower case without accents: what the rules' patterns are written against."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(character for character in decomposed if not unicodedata.combining(character))


@dataclass(frozen=True)
class KindRule:
    id: str
    kind: Kind
    weight: int
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class RoutingRule:
    id: str
    body: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class RuleSet:
    kind_rules: tuple[KindRule, ...]
    routing_rules: tuple[RoutingRule, ...]
    min_score: int
    priority: tuple[Kind, ...]
    abusive: re.Pattern[str] | None

    def classify(self, folded: str) -> tuple[Kind, list[str]]:
        """The kind of a folded text and the ids of the rules that fired."""
        scores: dict[Kind, int] = {}
        fired = []
        for rule in self.kind_rules:
            if rule.pattern.search(folded):
                scores[rule.kind] = scores.get(rule.kind, 0) + rule.weight
                fired.append(rule.id)
        ranked = sorted(scores, key=lambda kind: (-scores[kind], self._rank(kind)))
        if ranked and scores[ranked[0]] >= self.min_score:
            return ranked[0], fired
        return Kind.UNKNOWN, fired

    def routing(self, folded: str) -> list[RoutingHint]:
        return [
            RoutingHint(body=rule.body, rule=rule.id)
            for rule in self.routing_rules
            if rule.pattern.search(folded)
        ]

    def is_abusive(self, folded: str) -> bool:
        return self.abusive is not None and self.abusive.search(folded) is not None

    def _rank(self, kind: Kind) -> int:
        return self.priority.index(kind) if kind in self.priority else len(self.priority)


def _compile(patterns: list[str], where: str) -> re.Pattern[str]:
    try:
        return re.compile("|".join(f"(?:{pattern})" for pattern in patterns))
    except re.error as exc:
        raise ConfigurationError(f"{where}: invalid pattern: {exc}") from None


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
                _compile(r["patterns"], f"{path}: {r['id']}"),
            )
            for r in data.get("kind", [])
        )
        routes = tuple(
            RoutingRule(r["id"], r["body"], _compile(r["patterns"], f"{path}: {r['id']}"))
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


def load_abusive_words(path: Path) -> re.Pattern[str] | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigurationError(f"abusive words {path}: {exc}") from None
    words = [fold(line.strip()) for line in lines if line.strip() and not line.startswith("#")]
    if not words:
        return None
    alternatives = "|".join(
        re.escape(word).replace(r"\ ", r"\s+") for word in sorted(words, key=len, reverse=True)
    )
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
