"""The ASGI application: health, readiness and metrics (channels add their routes)."""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from gateway import __version__
from gateway.publisher import KafkaPublisher


class Health(BaseModel):
    status: str


def create_app(publisher: KafkaPublisher) -> FastAPI:
    app = FastAPI(title="intake-gateway", version=__version__)

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Health,
        responses={503: {"model": Health, "description": "Kafka unreachable"}},
        tags=["operations"],
    )
    async def readyz(response: Response) -> Health:
        """Readiness: Kafka answers, so submissions can be accepted."""
        if await publisher.is_ready():
            return Health(status="ready")
        response.status_code = 503
        return Health(status="kafka_unavailable")

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
