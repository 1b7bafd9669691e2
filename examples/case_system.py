"""A downstream case system, the smallest one: it reads ``complaints.v1`` and fetches every
attachment the events point to, checking each against its SHA-256, into a folder per complaint.

It holds only what a case system on another machine holds: Kafka's address (its own consumer
group) and a consumer token of the gateway: every attachment, whatever its URI (``file://`` or
``s3://``), is read through ``GET /v1/objects/{sha256}``, since the gateway keeps the bytes
sealed (encryption at rest: the bucket's objects are not the files, and S3 credentials alone
read nothing of them), and every read is on record. It imports nothing from the gateway.

    python examples/case_system.py --bootstrap kafka:9092 --out ./dossiers \\
        --gateway-url https://plaintes.example.org --token "$CASE_SYSTEM_TOKEN"

Each attachment fetched prints one line: ``<reference>\\t<sha256>\\t<path>``. A hash that does
not match stops the program (exit 1) without keeping the file. Offsets are committed after the
files of an event are written: a restart fetches again what was not.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

TOPIC = "complaints.v1"
WITH_FILES = {"complaint.received", "complaint.document_added"}
_UNSAFE = re.compile(r"[^\w.\- ]+")


class HashMismatch(Exception):
    """The bytes fetched are not the ones the event names."""


class Fetcher:
    """Gets an attachment's bytes from the gateway, with our token."""

    def __init__(self, arguments: argparse.Namespace) -> None:
        self._arguments = arguments
        self._http = httpx.AsyncClient(base_url=arguments.gateway_url or "http://gateway.invalid")

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._http.aclose()

    async def fetch(self, uri: str, sha256: str) -> bytes:
        answer = await self._http.get(
            f"/v1/objects/{sha256}",
            headers={"Authorization": f"Bearer {self._arguments.token}"},
        )
        answer.raise_for_status()
        content = answer.content
        if hashlib.sha256(content).hexdigest() != sha256:
            raise HashMismatch(f"{uri}: the bytes do not have the SHA-256 {sha256}")
        return content


def safe_name(filename: str, sha256: str) -> str:
    name = _UNSAFE.sub("_", filename).strip(". ") or "attachment"
    return f"{sha256[:12]}-{name[:120]}"


async def handle(event: dict[str, Any], fetcher: Fetcher, out: Path) -> int:
    """The event's stored attachments written under ``out/<reference>/``; how many."""
    if event.get("type") not in WITH_FILES:
        return 0
    reference = event["subject"]
    fetched = 0
    for attachment in event["data"].get("attachments", []):
        if attachment.get("status", "stored") != "stored" or not attachment.get("sha256"):
            continue  # rejected (too large...): the event says so, there are no bytes
        content = await fetcher.fetch(attachment["uri"], attachment["sha256"])
        folder = out / re.sub(r"[^A-Z0-9-]", "_", reference)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / safe_name(attachment["filename"], attachment["sha256"])
        path.write_bytes(content)
        print(f"{reference}\t{attachment['sha256']}\t{path}", flush=True)
        fetched += 1
    return fetched


async def run(arguments: argparse.Namespace) -> int:
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=arguments.bootstrap,
        group_id=arguments.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if arguments.from_beginning else "latest",
    )
    await consumer.start()
    fetched = 0
    try:
        async with Fetcher(arguments) as fetcher:
            while arguments.max_files is None or fetched < arguments.max_files:
                batch = await consumer.getmany(timeout_ms=int(arguments.idle_timeout * 1000))
                if not batch:
                    break
                for records in batch.values():
                    for record in records:
                        fetched += await handle(json.loads(record.value), fetcher, arguments.out)
                await consumer.commit()
    except HashMismatch as exc:
        print(f"case-system: {exc}", file=sys.stderr)
        return 1
    finally:
        await consumer.stop()
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--group", default="example-case-system", help="our consumer group")
    parser.add_argument("--out", type=Path, required=True, help="folder of the dossiers")
    parser.add_argument("--from-beginning", action="store_true")
    parser.add_argument("--max-files", type=int, default=None, help="stop after N files")
    parser.add_argument("--idle-timeout", type=float, default=10.0, help="stop after S s idle")
    parser.add_argument("--gateway-url", help="the gateway, for GET /v1/objects/{sha256}")
    parser.add_argument("--token", help="our consumer token (GATEWAY_CONSUMER_TOKENS)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(run(parse())))
