"""The README's commands and snippets are run by tests, so the README cannot drift.

The blocks marked ``dev-session`` run against a real ``scripts/dev`` in
tests/integration/test_dev.py; the others here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.support.readme import KINDS, RUNNABLE, Block, blocks, commands, of_kind


def clean_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("GATEWAY_")}


def test_every_command_and_snippet_says_which_test_runs_it() -> None:
    runnable = [block for block in blocks() if block.language in RUNNABLE]
    unmarked = [f"README.md:{block.line}" for block in runnable if block.kind not in KINDS]
    assert unmarked == [], "mark each with <!-- readme-test: KIND --> (tests/support/readme.py)"
    assert {block.kind for block in runnable} == KINDS  # each kind's test has blocks to run


def test_the_set_up_commands_are_the_scripts_dev_and_ci_run() -> None:
    (setup,) = of_kind("setup")
    assert commands(setup) == ["scripts/dev", "scripts/test"]
    assert re.search(r"^exec scripts/test\b", (REPO / ".ci/run").read_text(), re.MULTILINE)
    for script in ("scripts/dev", "scripts/test"):
        assert os.access(REPO / script, os.X_OK), script
    # scripts/dev itself is started by tests/integration/test_dev.py, as written
    assert "scripts/dev" in (REPO / "tests/integration/test_dev.py").read_text()


@pytest.mark.parametrize("block", of_kind("settings"), ids=lambda block: f"line{block.line}")
def test_each_settings_example_loads_as_valid_settings(block: Block) -> None:
    check = "from gateway.settings import load_settings; load_settings()"
    script = f"set -a\n{block.text}\nexec {shlex.quote(sys.executable)} -c {shlex.quote(check)}\n"
    done = subprocess.run(
        ["bash", "-c", script],
        env=clean_environment(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names = set(re.findall(r"^(GATEWAY_[A-Z0-9_]+)=", block.text.replace("\\\n", "\n"), re.M))
    assert names, "a settings example sets GATEWAY_ variables"


def test_the_long_fuzz_run_is_a_command_pytest_accepts() -> None:
    (long_run,) = of_kind("collect")
    (command,) = commands(long_run)
    words = shlex.split(command)
    assignments = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
    arguments = [word for word in words if not re.match(r"^[A-Z_]+=", word)]
    assert arguments[0] == "scripts/test"  # its extra arguments go to pytest
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *arguments[1:]],
        env={**clean_environment(), **assignments},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(r"^\d+ tests? collected", done.stdout, re.MULTILINE), done.stdout[-500:]
