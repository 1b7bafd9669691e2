"""The README's fenced blocks, each with the kind of test that runs it.

A block of commands or code is preceded by ``<!-- readme-test: KIND -->``:

- ``setup``: the two set-up commands (``scripts/dev`` is started by the dev test, ``scripts/test``
  is what CI runs);
- ``dev-session``: run against a running ``scripts/dev`` (tests/integration/test_dev.py);
- ``settings``: environment assignments that must load as valid settings;
- ``collect``: a long test run, collected (options and paths checked) but not run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

README = REPO / "README.md"
KINDS = frozenset({"setup", "dev-session", "settings", "collect"})
RUNNABLE = frozenset({"sh", "bash", "shell", "python", "py", "console"})
_MARKER = re.compile(r"^<!-- readme-test: ([a-z-]+) -->$")
_FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    kind: str | None
    language: str
    text: str
    line: int  # of the opening fence, 1-based


def blocks(path: Path = README) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    number = 0
    while number < len(lines):
        fence = _FENCE.match(lines[number])
        if fence is None:
            number += 1
            continue
        previous = next((line for line in reversed(lines[:number]) if line.strip()), "")
        marker = _MARKER.match(previous.strip())
        end = next(i for i in range(number + 1, len(lines)) if lines[i].startswith("```"))
        text = "\n".join(lines[number + 1 : end]) + "\n"
        found.append(Block(marker.group(1) if marker else None, fence.group(1), text, number + 1))
        number = end + 1
    return found


def of_kind(kind: str) -> list[Block]:
    return [block for block in blocks() if block.kind == kind]


def commands(block: Block) -> list[str]:
    """A shell block's commands: comments and blank lines dropped, continuations joined."""
    joined = block.text.replace("\\\n", " ")
    return [
        line.split("  #")[0].strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
