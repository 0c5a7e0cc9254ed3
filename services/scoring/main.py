"""Composition root of the scoring service: the one place its parts are wired together."""

from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.topics import (
    LIFECYCLE,
    LIFECYCLE_DLQ,
    NOTIFICATIONS,
    NOTIFICATIONS_DLQ,
    PROFILES,
    PROFILES_DLQ,
)
from schemas.topics.lifecycle_v1 import LifecycleEvent
from services.notify.client import NotifyClient
from services.profile.client import ProfileClient
from services.runtime.admin_client import AdminClient
from services.runtime.auth import admin_required
from services.runtime.bootstrap import ConsumerKit, open_infrastructure
from services.runtime.consumer import ConsumerConfig, Record
from services.runtime.guard import MAX_BODY_BYTES
from services.runtime.http import create_service_app
from services.runtime.messages import OutboxMessage
from services.runtime.service import Service, Worker, run_service
from services.runtime.transactional import Apply, Decode
from services.scoring import analytics_channels, analytics_clv
from services.scoring.analytics_api import PageRoutes, analytics_router
from services.scoring.analytics_store import (
    MOVES_SNAPSHOT,
    OVERVIEW_SNAPSHOT,
    SEGMENTS_SNAPSHOT,
    SnapshotPart,
)
from services.scoring.api import scoring_router
from services.scoring.customer_api import customer_routes
from services.scoring.dashboard.routes import mount_dashboard
from services.scoring.dashboard.session import DashboardSessions, admin_or_session
from services.scoring.domain.profile_view import ScoredProfile
from services.scoring.domain.schedule import RefitSchedule
from services.scoring.domain.score import unfitted_model
from services.scoring.email_api import email_routes
from services.scoring.email_store import count_emails, decode_notification, email_snapshot
from services.scoring.lifecycle_api import lifecycle_routes
from services.scoring.lifecycle_store import LIFECYCLE_SNAPSHOT
from services.scoring.refit_job import RefitJob
from services.scoring.score_batch import Item, ProfileUpdate, ScoreBatch
from services.scoring.settings import ScoringSettings
from services.scoring.snapshots import DailySnapshots
from services.scoring.store import PostgresScoringStore

SERVICE = "scoring"
# The dashboard's pages beyond the overview and segments: their analytics routes.
ANALYTICS_PAGES: tuple[PageRoutes, ...] = (
    lifecycle_routes,
    analytics_clv.routes,
    analytics_channels.routes,
    email_routes,
)
T = TypeVar("T")
_LIFECYCLE = TypeAdapter[LifecycleEvent](LifecycleEvent)


def snapshot_parts(attribution: timedelta) -> tuple[SnapshotPart, ...]:
    """What the daily snapshot measures: every page's part (`attribution`: how long after a
    click on an email an order counts for it)."""
    return (
        OVERVIEW_SNAPSHOT,
        SEGMENTS_SNAPSHOT,
        MOVES_SNAPSHOT,
        LIFECYCLE_SNAPSHOT,
        analytics_clv.CLV_SNAPSHOT,
        analytics_channels.CHANNELS_SNAPSHOT,
        email_snapshot(attribution),
    )


def decode_profile(record: Record) -> Item:
    if record.key is None:
        raise ValueError("a profiles.v1 record needs its key, the customer id")
    if record.value is None:  # a tombstone: the customer was erased
        return ProfileUpdate(record.key.decode(), None)
    snapshot = ScoredProfile.model_validate_json(record.value)
    return ProfileUpdate(record.key.decode(), snapshot, record.value)


def decode_lifecycle(record: Record) -> Item:
    return _LIFECYCLE.validate_json(record.value or b"")


async def build(settings: ScoringSettings, resources: AsyncExitStack) -> Service:
    infrastructure = await open_infrastructure(SERVICE, settings, resources)
    kit = ConsumerKit(settings, infrastructure, schema=SERVICE)
    rules = settings.standing_rules()
    async with infrastructure.engine.connect() as connection:
        latest = await PostgresScoringStore(connection).latest_model()
    score_batch = ScoreBatch(rules, latest or unfitted_model())
    refits = RefitJob(
        infrastructure.engine,
        kit.outbox,
        score_batch,
        rules,
        settings.refit_settings(),
        kit.relay_wakeup,
        RefitSchedule(timedelta(seconds=settings.refit_interval_seconds), settings.refit_at),
    )

    async def score(connection: AsyncConnection, items: Sequence[Item]) -> Sequence[OutboxMessage]:
        return await score_batch(PostgresScoringStore(connection), items)

    def consume(
        name: str, topic: str, dead_letters: str, decode: Decode[T], apply: Apply[T]
    ) -> Worker:
        group = f"{settings.consumer_group}-{name}"
        config = ConsumerConfig(group_id=group, topics=(topic,), dead_letter_topic=dead_letters)
        return kit.consumer(config, decode=decode, apply=apply)

    # One consumer per topic, each with its dead-letter topic; customers both touch take turns.
    # notifications.v1 (the Email page's facts) has its own group too: its pace never holds
    # back scoring.
    consumers = [
        consume("profiles", PROFILES, PROFILES_DLQ, decode_profile, score),
        consume("lifecycle", LIFECYCLE, LIFECYCLE_DLQ, decode_lifecycle, score),
        consume(
            "notifications", NOTIFICATIONS, NOTIFICATIONS_DLQ, decode_notification, count_emails
        ),
    ]
    app = create_service_app(
        SERVICE,
        infrastructure.readiness,
        title="Retain scoring",
        max_body_bytes=MAX_BODY_BYTES,
        description=(
            "CLV, RFM, value tiers, loyalty ladder, lifecycle stage and churn risk; the "
            "analytics dashboard."
        ),
    )
    admin = admin_required(settings)
    app.include_router(scoring_router(infrastructure.engine, refits, admin))
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    sessions = DashboardSessions(token, timedelta(hours=settings.dashboard_session_hours))
    clock = partial(datetime.now, UTC)
    access = admin_or_session(sessions, clock, admin)
    app.include_router(
        analytics_router(
            infrastructure.engine,
            access,
            (*ANALYTICS_PAGES, customer_routes(*_customer_services(settings, resources))),
        )
    )
    mount_dashboard(app, sessions, clock)
    snapshots = DailySnapshots(
        infrastructure.engine,
        snapshot_parts(timedelta(days=settings.email_attribution_days)),
        settings.analytics_snapshot_seconds,
    )
    return Service(
        app=app,
        readiness=infrastructure.readiness,
        workers=(*consumers, kit.relay, refits.run, snapshots.run),
    )


def _customer_services(
    settings: ScoringSettings, resources: AsyncExitStack
) -> tuple[ProfileClient, NotifyClient]:
    """The profile and notify admin APIs the customer page asks on the admin's behalf."""
    token = settings.admin_token.get_secret_value() if settings.admin_token else ""
    clients = (
        AdminClient("profile", settings.profile_url, token),
        AdminClient("notify", settings.notify_url, token),
    )
    for client in clients:
        resources.push_async_callback(client.close)
    return ProfileClient(clients[0]), NotifyClient(clients[1])


def main() -> None:
    run_service(SERVICE, ScoringSettings, build)
