"""Composition root of the ingest service: the one place its parts are wired together."""

from contextlib import AsyncExitStack

from services.ingest.settings import IngestSettings
from services.runtime.bootstrap import open_infrastructure
from services.runtime.http import create_service_app
from services.runtime.service import Service, run_service

SERVICE = "ingest"


async def build(settings: IngestSettings, resources: AsyncExitStack) -> Service:
    infrastructure = await open_infrastructure(SERVICE, settings, resources)
    app = create_service_app(
        SERVICE,
        infrastructure.readiness,
        title="Retain ingest",
        description=(
            "Segment-compatible tracking API: validates, stamps and publishes touchpoints to Kafka."
        ),
    )
    return Service(app=app, readiness=infrastructure.readiness)


def main() -> None:
    run_service(SERVICE, IngestSettings, build)
