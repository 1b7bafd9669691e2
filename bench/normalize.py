"""Normalizer throughput: complaints/s through the whole chain, and per stage, on one core.

    python -m bench.normalize [--repeat 5] [--corpus ../shared/corpus]

The mixed corpus: the text parts of the real-world emails of ``corpus/email`` (parsed with the
standard library), the ground-truth letters of ``corpus/postal``, and typical ~2 KB complaints in
French and English made here. The baseline, measured in the same run on the same texts, is one
plain pass over each text (NFC + casefold + word split): what any text processing costs at least.
Target: >= 1,000 complaints/s for typical 2 KB texts.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import random
import statistics
import tempfile
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.common import REPO, percentile, write_section
from gateway.channels.raw import RawMessage, Sender
from gateway.events.common import Channel
from gateway.normalizers import ComplaintNormalizer, NormalizerConfig
from gateway.normalizers.contacts import find_emails, find_phones
from gateway.normalizers.identifiers import find_identifiers
from gateway.normalizers.language import detect_language
from gateway.normalizers.rules import fold
from gateway.normalizers.text import clean_text, split_reply
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex

RECEIVED = datetime(2026, 11, 20, 15, tzinfo=UTC)
OPENINGS = [
    "Bonjour,\n\nJe vous écris au nom de ma mère, dont le NAM est TREM 5503 1512. ",
    "Hello,\n\nI am writing about my health card request filed in August. ",
    "Madame, Monsieur,\n\nJe porte plainte concernant le traitement de mon dossier. ",
]
SENTENCES = [
    "Malgré trois appels au service à la clientèle, je n'ai toujours reçu aucune réponse.",
    "Le délai annoncé était de quatre semaines et nous en sommes à plus de trois mois.",
    "I called several times and nobody could tell me where my file stands.",
    "On m'a demandé de renvoyer les mêmes documents une deuxième fois, ce qui est inacceptable.",
    "The agent I spoke to on the phone was rude and refused to transfer me to a supervisor.",
    "Vous pouvez me joindre au 514 555 0123 ou par courriel à marie.tremblay@example.org.",
]


def typical_complaints(count: int) -> list[str]:
    chooser = random.Random(7)
    texts = []
    for _ in range(count):
        parts = [chooser.choice(OPENINGS)]
        while sum(map(len, parts)) < 2000:
            parts.append(chooser.choice(SENTENCES) + " ")
        parts.append("\n\n--\nMarie Tremblay\n123 rue Principale\nMontréal QC H2X 1Y4")
        texts.append("".join(parts))
    return texts


def corpus_texts(corpus: Path) -> list[str]:
    texts = []
    for path in sorted((corpus / "email").rglob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        try:
            body = message.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
            content = body.get_content() if body is not None else ""
        except (LookupError, ValueError, AttributeError):  # broken charsets: skip, not our stage
            continue
        if isinstance(content, str) and content.strip():
            texts.append(content[:20_000])
    texts += [
        path.read_text(encoding="utf-8") for path in sorted((corpus / "postal").glob("*.gt.txt"))
    ]
    return texts


def raw_messages(texts: list[str]) -> list[RawMessage]:
    return [
        RawMessage(
            channel=Channel.EMAIL,
            source_key=f"bench:{n}",
            source_id=f"<{n}@bench>",
            received_at=RECEIVED,
            subject="Plainte",
            text=text,
            sender=Sender(
                name="Marie Tremblay", email=f"person{n % 60}@example.org", email_verified=True
            ),
        )
        for n, text in enumerate(texts)
    ]


def per_second(function: Callable[[str], object], texts: list[str], repeat: int) -> float:
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        for text in texts:
            function(text)
        rates.append(len(texts) / (time.perf_counter() - started))
    return statistics.median(rates)


def baseline(text: str) -> object:
    return unicodedata.normalize("NFC", text).casefold().split()


def measure(texts: list[str], repeat: int, tmp: Path) -> dict[str, float]:
    config = NormalizerConfig()
    chain = ComplaintNormalizer(config, SqliteDuplicateIndex(tmp / "duplicates.sqlite"))
    messages = {message.text: message for message in raw_messages(texts)}
    detect_language("warm up the language models once")
    stages: dict[str, Callable[[str], object]] = {
        "baseline: NFC + casefold + split": baseline,
        "text: clean + split reply": lambda t: split_reply(clean_text(t)),
        "language (lingua)": detect_language,
        "identifiers": find_identifiers,
        "contacts: emails + phones": lambda t: (find_emails(t), find_phones(t, "CA")),
        "rules: kind + routing + abuse": lambda t: (
            config.rules.evaluate(f := fold(t)),
            config.rules.is_abusive(f),
        ),
        "whole chain (incl. due dates, duplicate index)": lambda t: chain.normalize(messages[t]),
    }
    figures = {name: per_second(stage, texts, repeat) for name, stage in stages.items()}
    latencies = []
    for text in texts:  # one more pass, each complaint timed alone
        started = time.perf_counter()
        chain.normalize(messages[text])
        latencies.append((time.perf_counter() - started) * 1000)
    figures["p50 ms"], figures["p99 ms"] = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return figures


def table(sets: dict[str, dict[str, float]], sizes: dict[str, str]) -> str:
    names = [name for name in next(iter(sets.values())) if not name.endswith(" ms")]
    header = "| stage | " + " | ".join(f"{s} ({sizes[s]})" for s in sets) + " |"
    rows = [header, "| --- |" + " ---: |" * len(sets)]
    for name in names:
        cells = []
        for figures in sets.values():
            base = figures[names[0]]
            cells.append(f"{figures[name]:,.0f}/s ({figures[name] / base:.3f})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    rows.append(
        "| whole chain, one complaint: p50 / p99 | "
        + " | ".join(f"{f['p50 ms']:.1f} / {f['p99 ms']:.1f} ms" for f in sets.values())
        + " |"
    )
    return (
        "## Normalizers (`bench/normalize.py`)\n\n"
        "Inputs per second through each stage and the whole chain, one core; in brackets the "
        "ratio to the baseline (one NFC + casefold + split pass over the same texts, same run). "
        "Median of the repeats. Target: whole chain >= 1,000/s on typical 2 KB complaints.\n\n"
        + "\n".join(rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    args = parser.parse_args()
    typical = typical_complaints(300)
    mixed = corpus_texts(args.corpus) if args.corpus.exists() else []
    sets, sizes = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        sets["typical 2 KB"] = measure(typical, args.repeat, Path(tmp) / "a")
        sizes["typical 2 KB"] = f"{len(typical)} texts"
        if mixed:
            sets["mixed corpus"] = measure(mixed, args.repeat, Path(tmp) / "b")
            sizes["mixed corpus"] = (
                f"{len(mixed)} texts, median {statistics.median(map(len, mixed)):,.0f} chars"
            )
    text = table(sets, sizes)
    print(text)
    write_section("normalize", text)


if __name__ == "__main__":
    main()
