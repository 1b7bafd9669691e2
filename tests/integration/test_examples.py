"""``examples/case_system.py`` as a case team runs it against the embedded store: it reads
``complaints.v1`` and fetches every attachment through ``GET /v1/objects/{sha256}`` with its
token, hashes checked; without a token it stops at the first file."""

from __future__ import annotations

import asyncio
import hashlib
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from gateway.settings import KafkaSettings
from tests.conftest import REPO
from tests.support.forms import signed_multipart
from tests.support.http import gateway_settings, running_gateway
from tests.support.notifier import start_group_at_end

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE = REPO / "examples" / "case_system.py"


async def run_example(*arguments: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_example_case_system_fetches_every_attachment_through_the_gateway(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = gateway_settings(kafka_settings, tmp_path / "data").model_copy(
        update={"consumer_tokens": {"example": SecretStr("example-token")}}
    )
    group, other_group = f"case-{uuid.uuid4().hex[:8]}", f"case-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(kafka_settings.bootstrap, group)
    await start_group_at_end(kafka_settings.bootstrap, other_group)
    letters = {f"lettre-{n}.pdf": f"%PDF-1.4 {uuid.uuid4()}".encode() * 30 for n in range(5)}
    async with running_gateway(settings) as (url, _), httpx.AsyncClient(base_url=url) as client:
        for name, content in letters.items():
            fields = {"email": "marie@example.org", "body": f"Voir {name}."}
            request = signed_multipart(fields, [(name, content, "application/pdf")])
            assert (
                await client.post("/v1/webhooks/forms/contact-form", **request)
            ).status_code == 202
        common = ["--bootstrap", kafka_settings.bootstrap, "--gateway-url", url]
        common += ["--idle-timeout", "5", "--max-files", "5"]
        code, out, _ = await run_example(
            *common, "--group", group, "--token", "example-token", "--out", str(tmp_path / "out")
        )
        refused, _, error = await run_example(
            *common, "--group", other_group, "--token", "wrong", "--out", str(tmp_path / "no")
        )
    assert code == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert len(lines) == 5
    for _, sha256, path in lines:
        content = Path(path).read_bytes()
        assert hashlib.sha256(content).hexdigest() == sha256
        assert content in letters.values()
    assert refused != 0
    assert "401" in error
    assert not any((tmp_path / "no").rglob("*.pdf"))
