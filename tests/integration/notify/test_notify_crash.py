"""The sender killed (SIGKILL) at each point of a delivery, then restarted: what the crash
leaves is exactly what the notify design documents, and nothing else.

- killed after the attempt is recorded, before the SMTP transaction;
- killed during the SMTP transaction (the server has the message and has not answered);
- killed after the server accepted the message, before the answer is recorded.

Each leaves the email `uncertain` once the send lease has passed: transactional mail is sent
again with the same Message-ID (so it arrives once, or twice when the first copy had been
accepted), marketing mail is not (it arrives at most once). Both are published on
notifications.v1 and shown by the API. A restart also loses no waiting run and fires none early.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.topics import NOTIFICATIONS
from services.devstack.mailpit import LocalMailpit
from services.profile.domain.identity import customer_id_for
from services.runtime.db import create_engine
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import MailpitInbox, RunningService, read_messages, start_service
from tests.integration.notify.conftest import ScriptedSmtp
from tests.integration.notify.shoppers import cart_change, completed, shopper
from tests.integration.profile.conftest import ADMIN, Storefront, wait_for

pytestmark = pytest.mark.integration

# How long a dead sender's email stays `sending` before the restarted process calls it
# uncertain; the process that dies holds its emails far longer, so it is surely killed first.
LEASE, DOOMED_LEASE = "2s", "60s"
TEMPLATE = {"transactional": "order_thank_you", "marketing": "cart_reminder_1"}


def _notify(
    settings: ServiceSettings, smtp_host: str, smtp_port: int, **extra: str
) -> RunningService:
    options = {"RETAIN_NOTIFY_SEND_LEASE": LEASE, **extra}
    return start_service(
        "notify", settings, RETAIN_SMTP_HOST=smtp_host, RETAIN_SMTP_PORT=str(smtp_port), **options
    )


async def _ledger_row(database: AsyncEngine, customer_id: str, template: str) -> dict[str, Any]:
    async with database.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT notification_id, status, attempts, detail, message_id "
                    "FROM notify.notifications WHERE customer_id = :id AND template = :template"
                ),
                {"id": customer_id, "template": template},
            )
        ).one_or_none()
    return dict(row._mapping) if row else {}


async def _copies(inbox: MailpitInbox, address: str, notification_id: str) -> list[dict[str, Any]]:
    """The copies of this email in Mailpit: its Message-ID is its notification's id. Another
    email to the same shopper (a tier upgrade, when a model fitted by an earlier test moves
    them up meanwhile) is not a copy of it."""
    return [
        m
        for m in await inbox.messages_to(address)
        if m["MessageID"].startswith(f"{notification_id}@")
    ]


async def _exited(service: RunningService, seconds: float = 60) -> int:
    for _ in range(int(seconds * 10)):
        code = service.process.poll()
        if code is not None:
            return code
        await asyncio.sleep(0.1)
    raise AssertionError("the notify process did not die")


def _lag(metrics: str) -> dict[str, float]:
    """retain_consumer_lag by group, from a /metrics page."""
    found: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("retain_consumer_lag{"):
            labels, _, value = line.partition("} ")
            group = labels.split('group="', 1)[1].split('"', 1)[0]
            found[group] = found.get(group, 0.0) + float(value)
    return found


@pytest.fixture(scope="module", autouse=True)
async def nothing_else_to_send(
    settings: ServiceSettings, profile: RunningService, mailpit: LocalMailpit
) -> None:
    """A sender killed at its first claim must hold this test's email, not one of the emails
    earlier tests' events still have due: a healthy notify sends those first."""
    healthy = _notify(settings, mailpit.smtp_host, mailpit.smtp_port)
    engine = create_engine(settings)
    try:

        async def state() -> tuple[dict[str, float], int, int]:
            async with httpx.AsyncClient(timeout=10) as client:
                lag = _lag((await client.get(f"{healthy.url}/metrics")).text)
            async with engine.connect() as connection:
                due, decided = (
                    await connection.execute(
                        text(
                            "SELECT count(*) FILTER (WHERE status IN ('pending', 'sending') "
                            "AND due_at <= now() + interval '5 minutes'), count(*) "
                            "FROM notify.notifications"
                        )
                    )
                ).one()
            return lag, due, decided

        # Lag is reported per batch processed (a topic never written to reports none): drained
        # when every reported lag is 0, nothing is due, and nothing new is decided for 3 s.
        async def drained() -> bool:
            lag, due, decided = await state()
            if any(lag.values()) or due:
                return False
            await asyncio.sleep(3)
            return await state() == (lag, 0, decided)

        await asyncio.sleep(3)  # the consumers' first fetch
        await wait_for(drained, seconds=120)
    finally:
        await engine.dispose()
        healthy.stop()


@pytest.mark.parametrize("kind", ["transactional", "marketing"])
@pytest.mark.parametrize("point", ["claimed", "during", "delivered"])
async def test_a_sender_killed_mid_delivery_leaves_the_email_uncertain_and_never_doubles_it(
    point: str,
    kind: str,
    settings: ServiceSettings,
    profile: RunningService,
    mailpit: LocalMailpit,
    inbox: MailpitInbox,
    storefront: Storefront,
    database: AsyncEngine,
    scripted_smtp: Callable[..., Awaitable[ScriptedSmtp]],
) -> None:
    now = datetime.now(UTC)
    user = f"crash-{point}-{kind}-{uuid.uuid4().hex[:6]}"
    address, customer_id, template = (
        f"{user}@shop.example",
        customer_id_for(("user", user)),
        TEMPLATE[kind],
    )
    if point == "during":  # a server that takes the message and never answers
        silent = await scripted_smtp(behaviours={address: "silent"})
        doomed = _notify(settings, "127.0.0.1", silent.port, RETAIN_NOTIFY_SEND_LEASE=DOOMED_LEASE)
    else:
        doomed = _notify(
            settings,
            mailpit.smtp_host,
            mailpit.smtp_port,
            RETAIN_NOTIFY_SEND_LEASE=DOOMED_LEASE,
            RETAIN_CRASH_AT=f"notify.sender.{point}",
            # Not set off by an email of an earlier test that falls due meanwhile.
            RETAIN_CRASH_FOR=customer_id,
        )
    try:
        trigger = (
            completed(user, now)
            if kind == "transactional"
            else cart_change(user, now - timedelta(hours=5))
        )
        await storefront.send([shopper(user, now), trigger])
        if point == "during":

            async def mid_transaction() -> bool:
                return any(address.encode() in body for body in silent.received)

            await wait_for(mid_transaction, seconds=60)
            doomed.process.kill()
        assert await _exited(doomed) == -9
    finally:
        doomed.stop()

    left = await _ledger_row(database, customer_id, template)
    assert (left["status"], left["attempts"]) == ("sending", 1), left
    arrived_before = len(await _copies(inbox, address, left["notification_id"]))
    assert arrived_before == (1 if point == "delivered" else 0)

    restarted = _notify(settings, mailpit.smtp_host, mailpit.smtp_port)
    try:
        final_status = "sent" if kind == "transactional" else "uncertain"

        async def settled() -> dict[str, Any] | None:
            row = await _ledger_row(database, customer_id, template)
            return row if row["status"] == final_status else None

        row = await wait_for(settled, seconds=60)
        await asyncio.sleep(2)  # a copy sent twice would have arrived by now
        copies = await _copies(inbox, address, row["notification_id"])
        if kind == "transactional":  # sent again: once more, with the same Message-ID
            assert len(copies) == arrived_before + 1
            assert {f"<{m['MessageID']}>" for m in copies} == {row["message_id"]}
            assert (row["attempts"], row["detail"]) == (2, "uncertain: sent again")
        else:  # never sent again
            assert len(copies) == arrived_before
            assert row["attempts"] == 1

        expected = ["uncertain", "sent"] if kind == "transactional" else ["uncertain"]
        published = await read_messages(
            settings,
            NOTIFICATIONS,
            lambda m: (
                m.key == customer_id.encode()
                and orjson.loads(m.value or b"")["notification_id"] == row["notification_id"]
            ),
            count=len(expected),
        )
        assert [orjson.loads(m.value or b"")["type"] for m in published] == expected
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.get(
                f"{restarted.url}/v1/customers/{customer_id}/notifications", headers=ADMIN
            )
        shown = {n["template"]: n for n in answer.json()["notifications"]}
        assert shown[template]["status"] == final_status
    finally:
        restarted.stop()


async def test_a_restart_loses_no_waiting_run_and_fires_none_early(
    settings: ServiceSettings,
    profile: RunningService,
    mailpit: LocalMailpit,
    inbox: MailpitInbox,
    storefront: Storefront,
    database: AsyncEngine,
) -> None:
    now = datetime.now(UTC)
    user = f"crash-wait-{uuid.uuid4().hex[:6]}"
    address, customer_id = f"{user}@shop.example", customer_id_for(("user", user))
    # The reminder is due 4 h after the cart's last change: 12 s from now. (The welcome email
    # waits 10 minutes: not due in this test.)
    due = now + timedelta(seconds=12)
    first = _notify(settings, mailpit.smtp_host, mailpit.smtp_port)
    try:
        await storefront.send([shopper(user, now), cart_change(user, due - timedelta(hours=4))])

        async def waiting() -> bool:
            async with database.connect() as connection:
                wakes_at = await connection.scalar(
                    text("SELECT wake_at FROM notify.customers WHERE customer_id = :id"),
                    {"id": customer_id},
                )
            return wakes_at is not None and wakes_at <= due

        await wait_for(waiting, seconds=30)
        first.process.kill()
        assert await _exited(first) == -9
    finally:
        first.stop()
    second = _notify(settings, mailpit.smtp_host, mailpit.smtp_port)
    try:
        [message] = await wait_for(lambda: inbox.messages_to(address), seconds=60)
        arrived = datetime.fromisoformat(message["Created"])
        assert arrived >= due - timedelta(seconds=1)  # Mailpit stamps to the second
        await asyncio.sleep(2)
        assert len(await inbox.messages_to(address)) == 1
    finally:
        second.stop()
