"""Every read of a complaint's stored objects on record, and ``intake-gateway audit REFERENCE``
showing who read what, when and why: a case system through ``GET /v1/objects`` (whole and a
range), an operator looking at the raw copy of documents that did not match the complaint (the
command line's ``dlq show``, the admin API)."""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import os
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from gateway.settings import KafkaSettings
from tests.support.forms import signed_multipart
from tests.support.http import gateway_settings, running_gateway
from tests.support.pages import post_form

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LETTER = b"%PDF-1.4 a letter for the file " * 50


async def cli(data_dir: Path, bootstrap: str, *args: str) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env = {**clean, "GATEWAY_DATA_DIR": str(data_dir), "GATEWAY_KAFKA_BOOTSTRAP": bootstrap}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_every_read_of_a_complaints_objects_is_in_its_audit_trail(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    settings = gateway_settings(kafka_settings, data_dir).model_copy(
        update={
            "consumer_tokens": {"dossiers-ramq": SecretStr("case-token")},
            "admin_tokens": {"marie.roy": SecretStr("admin-token")},
        }
    )
    async with running_gateway(settings) as (url, _), httpx.AsyncClient(base_url=url) as client:
        filed = await client.post(
            "/v1/webhooks/forms/contact-form",
            **signed_multipart(
                {"email": "owner@example.org", "body": "Voici ma lettre."},
                [("lettre.pdf", LETTER, "application/pdf")],
            ),
        )
        reference = filed.json()["reference"]
        case = {"Authorization": "Bearer case-token"}
        sha256 = hashlib.sha256(LETTER).hexdigest()
        assert (await client.get(f"/v1/objects/{sha256}", headers=case)).status_code == 200
        ranged = await client.get(f"/v1/objects/{sha256}", headers={**case, "Range": "bytes=0-9"})
        assert ranged.status_code == 206
        sent = await post_form(
            client,
            "/complaints/documents?lang=en",
            "/complaints/documents?lang=en",
            {"reference": reference, "contact": "not-the-owner@example.org"},
            files=[("attachments", ("more.pdf", b"%PDF-1.4 more", "application/pdf"))],
        )
        assert sent.status_code == 200
        code, listed, _ = await cli(data_dir, kafka_settings.bootstrap, "dlq", "list")
        assert code == 0
        [record_id] = [
            line.split("\t")[0] for line in listed.splitlines() if "documents_unmatched" in line
        ]
        code, _, err = await cli(data_dir, kafka_settings.bootstrap, "dlq", "show", record_id)
        assert code == 0, err
        viewed = await client.get(
            f"/v1/admin/dlq/{record_id}", headers={"Authorization": "Bearer admin-token"}
        )
        assert viewed.status_code == 200
        code, out, err = await cli(data_dir, kafka_settings.bootstrap, "audit", reference)
    assert code == 0, err
    trail = [line.split("\t") for line in out.splitlines()]
    assert [(who, why) for _, who, _, why in trail] == [
        ("dossiers-ramq", "case system read (GET /v1/objects)"),
        ("dossiers-ramq", "case system read (GET /v1/objects)"),
        (f"cli:{getpass.getuser()}", "dlq show"),
        ("marie.roy", "admin view (GET /v1/admin/dlq)"),
    ]
    assert trail[0][2] == f"object {sha256}"
    assert trail[1][2] == f"object {sha256} bytes 0-9"
    assert trail[2][2].startswith(f"raw copy of dead-letter record {record_id}")
    assert [when for when, *_ in trail] == sorted(when for when, *_ in trail)
