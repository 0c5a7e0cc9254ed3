"""Composition root of the profile service: the one place its parts are wired together."""

from contextlib import AsyncExitStack

from services.profile.settings import ProfileSettings
from services.runtime.bootstrap import open_infrastructure
from services.runtime.http import create_service_app
from services.runtime.service import Service, run_service

SERVICE = "profile"


async def build(settings: ProfileSettings, resources: AsyncExitStack) -> Service:
    infrastructure = await open_infrastructure(SERVICE, settings, resources)
    app = create_service_app(
        SERVICE,
        infrastructure.readiness,
        title="Retain profile",
        description=(
            "Folds touchpoints into customer profiles; serves profile reads, export and erasure."
        ),
    )
    return Service(app=app, readiness=infrastructure.readiness)


def main() -> None:
    run_service(SERVICE, ProfileSettings, build)
