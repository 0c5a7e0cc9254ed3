"""Composition root of the profile service: the one place its parts are wired together."""

import asyncio
from contextlib import AsyncExitStack

from schemas.topics import TOUCHPOINTS, TOUCHPOINTS_DLQ
from services.profile.api import profile_router
from services.profile.consumer import TouchpointHandler
from services.profile.domain import LoyaltyRule
from services.profile.folding import ProfileFolder
from services.profile.relay import OutboxRelay
from services.profile.repository import ProfileRepository
from services.profile.settings import ProfileSettings
from services.runtime.auth import admin_required
from services.runtime.bootstrap import consumer_worker, open_infrastructure
from services.runtime.consumer import ConsumerConfig
from services.runtime.http import create_service_app
from services.runtime.service import Service, run_service

SERVICE = "profile"


async def build(settings: ProfileSettings, resources: AsyncExitStack) -> Service:
    infrastructure = await open_infrastructure(SERVICE, settings, resources)
    engine, producer = infrastructure.engine, infrastructure.producer
    relay_wakeup = asyncio.Event()
    folder = ProfileFolder(
        engine,
        settings.consumer_group,
        TOUCHPOINTS_DLQ,
        LoyaltyRule(points_per_unit=settings.loyalty_points_per_unit),
    )
    handler = TouchpointHandler(folder, settings.consumer_group, relay_wakeup)
    consumer = consumer_worker(
        settings,
        ConsumerConfig(
            group_id=settings.consumer_group,
            topics=(TOUCHPOINTS,),
            dead_letter_topic=TOUCHPOINTS_DLQ,
            max_records=settings.batch_size,
        ),
        handler,
        producer,
        positions=handler.positions,
    )
    relay = OutboxRelay(engine, producer, relay_wakeup)

    app = create_service_app(
        SERVICE,
        infrastructure.readiness,
        title="Retain profile",
        description=(
            "Customer profiles folded from touchpoints: identity resolution, consent, "
            "acquisition, commerce, cart, engagement. Admin token required."
        ),
    )
    app.include_router(profile_router(ProfileRepository(engine), admin_required(settings)))
    return Service(app=app, readiness=infrastructure.readiness, workers=(consumer, relay.run))


def main() -> None:
    run_service(SERVICE, ProfileSettings, build)
