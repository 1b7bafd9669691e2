"""A web-form webhook as a team would write it without intake-gateway: the peer of
``python -m bench.peer`` (issue 29's baseline), deliberately small and honest.

FastAPI and pydantic, the same HMAC check as the gateway's (``X-Gateway-Signature:
t=<seconds>,v1=<hex>``, constant-time, 5 minutes of tolerance), the submission validated by a
pydantic model, wrapped in a CloudEvent and published with aiokafka (acks=all, idempotent
producer, gzip off), ``202`` once Kafka acknowledged it. What it does not do, and the gateway
does: keep a raw copy, honour Idempotency-Key, limit rates, normalise (phone numbers, health
insurance numbers, language, duplicates, due dates), sign or seal anything at rest, count
metrics. It imports nothing from the gateway.

    python -m bench.peers.webhook --port 8300 --bootstrap 127.0.0.1:9092 --secret s3cret
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Header, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

TOPIC = "complaints.v1"
TOLERANCE_S = 300


class Submission(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    kind: str = "complaint"
    body: str = Field(min_length=1, max_length=100_000)


def verified(body: bytes, header: str | None, secret: bytes) -> bool:
    """The gateway's scheme: HMAC-SHA256 of ``<t>.<body>``, t within the tolerance."""
    fields = dict(item.strip().partition("=")[::2] for item in (header or "").split(","))
    timestamp, signature = fields.get("t", ""), fields.get("v1", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_S:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def application(bootstrap: str, secret: str) -> FastAPI:
    producers: list[AIOKafkaProducer] = []  # made in the server's loop, at start

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        producers.append(producer)
        try:
            yield
        finally:
            await producer.stop()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/webhooks/forms/{form_id}", status_code=202)
    async def receive(
        form_id: str,
        request: Request,
        signature: Annotated[str | None, Header(alias="X-Gateway-Signature")] = None,
    ) -> dict[str, str]:
        body = await request.body()
        if not verified(body, signature, secret.encode()):
            raise HTTPException(401, "bad signature")
        try:
            submission = Submission.model_validate_json(body)
        except ValidationError as exc:
            raise HTTPException(422, exc.errors(include_url=False)) from None
        event_id = str(uuid.uuid4())
        event = {
            "specversion": "1.0",
            "id": event_id,
            "source": f"urn:peer:forms:{form_id}",
            "type": "complaint.received",
            "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/json",
            "data": submission.model_dump(mode="json"),
        }
        await producers[0].send_and_wait(TOPIC, json.dumps(event).encode(), key=event_id.encode())
        return {"event_id": event_id}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    uvicorn.run(
        application(args.bootstrap, args.secret),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
