"""Composition root of the notify service: the one place its parts are wired together."""

from contextlib import AsyncExitStack

from services.notify.settings import NotifySettings
from services.runtime.bootstrap import open_infrastructure
from services.runtime.http import create_service_app
from services.runtime.service import Service, run_service

SERVICE = "notify"


async def build(settings: NotifySettings, resources: AsyncExitStack) -> Service:
    infrastructure = await open_infrastructure(SERVICE, settings, resources)
    app = create_service_app(
        SERVICE,
        infrastructure.readiness,
        title="Retain notify",
        description=(
            "Lifecycle email journeys with consent, caps, SMTP delivery and open/click tracking."
        ),
    )
    return Service(app=app, readiness=infrastructure.readiness)


def main() -> None:
    run_service(SERVICE, NotifySettings, build)
