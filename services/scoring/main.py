"""Composition root of the scoring service: the one place its parts are wired together."""

from contextlib import AsyncExitStack

from services.runtime.bootstrap import open_infrastructure
from services.runtime.http import create_service_app
from services.runtime.service import Service, run_service
from services.scoring.settings import ScoringSettings

SERVICE = "scoring"


async def build(settings: ScoringSettings, resources: AsyncExitStack) -> Service:
    infrastructure = await open_infrastructure(SERVICE, settings, resources)
    app = create_service_app(
        SERVICE,
        infrastructure.readiness,
        title="Retain scoring",
        description=(
            "CLV, RFM, value tiers, loyalty ladder, lifecycle stage and churn risk; the "
            "analytics dashboard."
        ),
    )
    return Service(app=app, readiness=infrastructure.readiness)


def main() -> None:
    run_service(SERVICE, ScoringSettings, build)
