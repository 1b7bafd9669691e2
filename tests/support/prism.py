"""Prism serving Twilio's own OpenAPI specs (``../shared/twilio-oai``) on loopback.

Prism validates every request against the spec and answers 422 when one does not conform, so a
send that succeeds proves the SDK's request was valid. Each mock runs on a free port and is
stopped by its own process id. ``scripts/setup --tests`` installs Prism in tests/twilio.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO, SHARED
from tests.support.kafka import free_port, wait_for_port

PRISM = REPO / "tests" / "twilio" / "node_modules" / ".bin" / "prism"
SPECS = {"verify": "twilio_verify_v2.json", "api": "twilio_api_v2010.json"}
ACCOUNT_SID = "AC" + "0" * 32
VERIFY_SERVICE_SID = "VA" + "a" * 32
AUTH_TOKEN = "test-auth-token"


@dataclass(frozen=True)
class TwilioMock:
    bases: dict[str, str]
    log: Path

    def settings(self, **extra: str) -> dict[str, object]:
        return {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "verify_service_sid": VERIFY_SERVICE_SID,
            "from": "+15145550000",
            "api_base": self.bases,
            **extra,
        }

    def requests(self, path_part: str) -> list[str]:
        """Lines of Prism's log about requests whose path contains ``path_part``."""
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if path_part in line and "Request received" in line
        ]


@contextmanager
def twilio_mock(log_dir: Path) -> Iterator[TwilioMock]:
    if not PRISM.exists():
        raise RuntimeError(f"{PRISM} is missing: run scripts/setup --tests")
    log = log_dir / "prism.log"
    with ExitStack() as stack, log.open("wb") as output:
        bases: dict[str, str] = {}
        for product, spec in SPECS.items():
            port = free_port()
            process = subprocess.Popen(
                [
                    str(PRISM),
                    "mock",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    str(SHARED / "twilio-oai" / spec),
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            stack.callback(_stop, process)
            wait_for_port(port, process, "prism")
            bases[product] = f"http://127.0.0.1:{port}"
        yield TwilioMock(bases, log)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
