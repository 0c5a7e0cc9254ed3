"""Composition root of the profile service: the one place its parts are wired together."""

from collections.abc import Sequence
from contextlib import AsyncExitStack

from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.topics import TOUCHPOINTS, TOUCHPOINTS_DLQ
from schemas.topics.touchpoints_v1 import Touchpoint
from services.profile.api import profile_router
from services.profile.domain import LoyaltyRule
from services.profile.fold_batch import FoldBatch
from services.profile.repository import ProfileRepository
from services.profile.settings import ProfileSettings
from services.profile.store import PostgresProfileStore
from services.runtime.auth import admin_required
from services.runtime.bootstrap import ConsumerKit, open_infrastructure
from services.runtime.consumer import ConsumerConfig, Record
from services.runtime.guard import MAX_BODY_BYTES
from services.runtime.http import create_service_app
from services.runtime.messages import OutboxMessage
from services.runtime.service import Service, run_service
from services.runtime.transactional import Apply

SERVICE = "profile"


def decode_touchpoint(record: Record) -> Touchpoint:
    return Touchpoint.from_json(record.value or b"")


def build_fold(settings: ProfileSettings) -> Apply[Touchpoint]:
    """The use case over the PostgreSQL store, in the transaction the consumer kit opens."""
    fold_batch = FoldBatch(LoyaltyRule(points_per_unit=settings.loyalty_points_per_unit))

    async def fold(
        connection: AsyncConnection, touchpoints: Sequence[Touchpoint]
    ) -> Sequence[OutboxMessage]:
        return await fold_batch(PostgresProfileStore(connection), touchpoints)

    return fold


async def build(settings: ProfileSettings, resources: AsyncExitStack) -> Service:
    infrastructure = await open_infrastructure(SERVICE, settings, resources)
    kit = ConsumerKit(settings, infrastructure, schema=SERVICE)
    consumer = kit.consumer(
        ConsumerConfig(
            group_id=settings.consumer_group,
            topics=(TOUCHPOINTS,),
            dead_letter_topic=TOUCHPOINTS_DLQ,
            max_records=settings.batch_size,
        ),
        decode=decode_touchpoint,
        apply=build_fold(settings),
    )
    app = create_service_app(
        SERVICE,
        infrastructure.readiness,
        title="Retain profile",
        max_body_bytes=MAX_BODY_BYTES,
        description=(
            "Customer profiles folded from touchpoints: identity resolution, consent, "
            "acquisition, commerce, cart, engagement. Admin token required."
        ),
    )
    repository = ProfileRepository(infrastructure.engine, kit.outbox)
    app.include_router(profile_router(repository, admin_required(settings)))
    return Service(app=app, readiness=infrastructure.readiness, workers=(consumer, kit.relay))


def main() -> None:
    run_service(SERVICE, ProfileSettings, build)
