"""Composition root of the notify service: the one place its parts are wired together."""

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from functools import partial

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.topics import LIFECYCLE, LIFECYCLE_DLQ, PROFILES, PROFILES_DLQ, SCORES, SCORES_DLQ
from schemas.topics.lifecycle_v1 import LifecycleEvent
from schemas.topics.profiles_v1 import ProfileSnapshot
from schemas.topics.scores_v1 import CustomerScores
from services.notify import journeys
from services.notify.api import notify_router
from services.notify.email import compose, message_id_for, template_problems
from services.notify.link_events import LinkEvents
from services.notify.run_journeys import Item, ProfileChange, RunJourneys, ScoresChange
from services.notify.sender import Sender, SenderSettings
from services.notify.settings import NotifySettings
from services.notify.smtp import SmtpDelivery
from services.notify.store import PostgresNotifyStore
from services.notify.test_send import SUBJECT_PREFIX, TestSends
from services.notify.tracking import tracking_router
from services.notify.wakeups import WakeUps
from services.runtime.auth import admin_required
from services.runtime.bootstrap import ConsumerKit, open_infrastructure
from services.runtime.consumer import ConsumerConfig, Record
from services.runtime.guard import MAX_BODY_BYTES
from services.runtime.http import create_service_app
from services.runtime.messages import OutboxMessage
from services.runtime.service import Service, run_service
from services.runtime.settings import SettingsError

SERVICE = "notify"
_LIFECYCLE = TypeAdapter[LifecycleEvent](LifecycleEvent)


def _customer_id(record: Record) -> str:
    if record.key is None:
        raise ValueError(f"a {record.topic} record needs its key, the customer id")
    return record.key.decode()


def decode_lifecycle(record: Record) -> Item:
    return _LIFECYCLE.validate_json(record.value or b"")


def decode_profile(record: Record) -> Item:
    customer_id = _customer_id(record)
    if record.value is None:  # erased, or merged into another customer
        return ProfileChange(customer_id, 0, None)
    snapshot = ProfileSnapshot.model_validate_json(record.value)
    return ProfileChange(customer_id, snapshot.revision, record.value)


def decode_scores(record: Record) -> Item:
    customer_id = _customer_id(record)
    if record.value is not None:
        CustomerScores.model_validate_json(record.value)  # a malformed record is dead-lettered
    return ScoresChange(customer_id, record.value)


async def build(settings: NotifySettings, resources: AsyncExitStack) -> Service:
    infrastructure = await open_infrastructure(SERVICE, settings, resources)
    kit = ConsumerKit(settings, infrastructure, schema=SERVICE)
    catalog = journeys.load(settings.notify_journeys_dir)
    problems = template_problems(catalog.templates(), settings.notify_templates_dir)
    if problems:  # found now, not when a customer's email is due
        raise SettingsError("email templates are not usable:\n" + "\n".join(problems))
    run_journeys = RunJourneys(catalog, settings.policy())
    sender_wakeup = asyncio.Event()
    delivery = SmtpDelivery(settings)
    resources.push_async_callback(delivery.close)
    signer = settings.link_signer()
    message_id = partial(message_id_for, domain=settings.message_domain)
    sender = Sender(
        infrastructure.engine,
        kit.outbox,
        partial(compose, signer=signer, settings=settings),
        delivery,
        message_id_for=message_id,
        relay_wakeup=kit.relay_wakeup,
        wakeup=sender_wakeup,
        settings=SenderSettings(lease=settings.send_lease),
    )

    async def apply(connection: AsyncConnection, items: Sequence[Item]) -> Sequence[OutboxMessage]:
        messages, added = await run_journeys(
            PostgresNotifyStore(connection), items, datetime.now(UTC)
        )
        if added:  # the sender looks again at once (and finds it once this commits)
            sender_wakeup.set()
        return messages

    # One consumer per topic, each with its dead-letter topic; a customer's calls take turns.
    inputs = (
        ("lifecycle", LIFECYCLE, LIFECYCLE_DLQ, decode_lifecycle),
        ("profiles", PROFILES, PROFILES_DLQ, decode_profile),
        ("scores", SCORES, SCORES_DLQ, decode_scores),
    )
    consumers = [
        kit.consumer(
            ConsumerConfig(
                group_id=f"retain-notify-{name}", topics=(topic,), dead_letter_topic=dead_letters
            ),
            decode=decode,
            apply=apply,
        )
        for name, topic, dead_letters, decode in inputs
    ]
    wake_ups = WakeUps(
        infrastructure.engine,
        kit.outbox,
        run_journeys,
        relay_wakeup=kit.relay_wakeup,
        sender_wakeup=sender_wakeup,
    )
    app = create_service_app(
        SERVICE,
        infrastructure.readiness,
        title="Retain notify",
        max_body_bytes=MAX_BODY_BYTES,
        description=(
            "Lifecycle email journeys with consent, caps, SMTP delivery and open/click tracking."
        ),
    )
    links = LinkEvents(infrastructure.engine, kit.outbox, kit.relay_wakeup)
    app.include_router(
        tracking_router(
            signer,
            links.on_open,
            links.on_click,
            links.on_unsubscribe,
            store_name=settings.store_name,
        )
    )
    test_sends = TestSends(
        infrastructure.engine,
        catalog.templates(),
        partial(compose, signer=signer, settings=settings, subject_prefix=SUBJECT_PREFIX),
        delivery,
        message_id_for=message_id,
    )
    app.include_router(
        notify_router(infrastructure.engine, catalog, admin_required(settings), test_sends)
    )
    return Service(
        app=app,
        readiness=infrastructure.readiness,
        workers=(*consumers, kit.relay, wake_ups.run, sender.run),
    )


def main() -> None:
    run_service(SERVICE, NotifySettings, build)
