"""Journeys through the real pipeline: events posted to ingest reach notify through profile's
lifecycle.v1, and notify's engine decides in its own tables what to send."""

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from html import unescape as html_unescape
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.topics import NOTIFICATIONS
from services.devstack.mailpit import LocalMailpit
from services.notify.journeys import DIRECTORY as JOURNEY_FILES
from services.profile.domain.identity import customer_id_for
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import MailpitInbox, RunningService, read_messages, start_service
from tests.integration.notify.shoppers import (
    cart_change,
    completed,
    local_link,
    notifications_of,
    shopper,
)
from tests.integration.profile.conftest import ADMIN, Storefront, wait_for

pytestmark = pytest.mark.integration


async def _counts(database: AsyncEngine) -> dict[str, int]:
    async with database.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT counter, count AS n FROM notify.journey_counts "
                "WHERE journey = 'abandoned_cart'"
            )
        )
        return {r.counter: int(r.n) for r in rows}


async def test_a_cart_left_for_four_hours_gets_its_reminder_once(
    notify: RunningService, storefront: Storefront, database: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    user = f"cart-{uuid.uuid4().hex[:8]}"
    await storefront.send([shopper(user, now), cart_change(user, now - timedelta(hours=5))])
    customer_id = customer_id_for(("user", user))

    async def reminded() -> list[dict[str, Any]]:
        found = await notifications_of(database, customer_id)
        return found if any(n["template"] == "cart_reminder_1" for n in found) else []

    found = await wait_for(reminded, seconds=60)
    [reminder] = [n for n in found if n["template"] == "cart_reminder_1"]
    assert reminder["journey"] == "abandoned_cart"
    assert reminder["status"] in ("pending", "sending", "sent")
    # The same events again (an SDK retrying) decide nothing new.
    await storefront.send([shopper(user, now), cart_change(user, now - timedelta(hours=5))])
    decided = await notifications_of(database, customer_id)
    assert [n["template"] for n in decided if n["journey"] == "abandoned_cart"] == [
        "cart_reminder_1"
    ]


async def test_an_order_arriving_after_its_cart_ends_the_run_before_any_reminder(
    notify: RunningService, storefront: Storefront, database: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    user = f"bought-{uuid.uuid4().hex[:8]}"
    before = await _counts(database)
    # The cart changed an hour ago (its reminder is three hours away) ...
    await storefront.send([shopper(user, now), cart_change(user, now - timedelta(hours=1))])

    async def entered() -> bool:
        return (await _counts(database)).get("entered", 0) > before.get("entered", 0)

    await wait_for(entered, seconds=60)
    # ... and the order placed half an hour ago arrives only now: the run ends, converted.
    await storefront.send([completed(user, now - timedelta(minutes=30))])

    async def converted() -> bool:
        after = await _counts(database)
        return after.get("exited:converted", 0) > before.get("exited:converted", 0)

    await wait_for(converted, seconds=60)
    customer_id = customer_id_for(("user", user))
    decided = await notifications_of(database, customer_id)
    assert [n for n in decided if n["journey"] == "abandoned_cart"] == []
    assert "order_thank_you" in {n["template"] for n in decided}  # the order's own email
    async with database.connect() as connection:
        wake = await connection.scalar(
            text("SELECT wake_at FROM notify.customers WHERE customer_id = :id"),
            {"id": customer_id},
        )
    assert wake is None or wake > now + timedelta(hours=12)  # no reminder left to fire


async def test_two_marketing_emails_due_at_once_send_one_and_suppress_the_other_for_the_cap(
    notify: RunningService, storefront: Storefront, database: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    user = f"capped-{uuid.uuid4().hex[:8]}"
    # Opted in a day ago (the welcome is due) and left a cart five hours ago (its reminder is).
    await storefront.send(
        [shopper(user, now, days_ago=1), cart_change(user, now - timedelta(hours=5))]
    )
    customer_id = customer_id_for(("user", user))

    async def both() -> list[dict[str, Any]]:
        found = await notifications_of(database, customer_id)
        journeys = {n["journey"] for n in found}
        return found if {"welcome", "abandoned_cart"} <= journeys else []

    found = await wait_for(both, seconds=60)
    # At most one marketing email in 16 hours: whichever came first goes, the other is held
    # back and says why.
    statuses = sorted((n["status"], n["reason"]) for n in found)
    assert statuses[-1] == ("suppressed", "frequency_cap")
    assert statuses[0][0] in ("pending", "sending", "sent")


async def test_the_api_lists_journeys_a_customers_emails_and_the_suppression_list(
    notify: RunningService, storefront: Storefront
) -> None:
    now = datetime.now(UTC)
    user = f"api-{uuid.uuid4().hex[:8]}"
    await storefront.send([shopper(user, now), cart_change(user, now - timedelta(hours=5))])
    customer_id = customer_id_for(("user", user))
    url = notify.url
    async with httpx.AsyncClient(timeout=30) as client:

        async def emails() -> list[dict[str, Any]]:
            answer = await client.get(
                f"{url}/v1/customers/{customer_id}/notifications", headers=ADMIN
            )
            return list(answer.json()["notifications"])

        found = await wait_for(emails, seconds=60)
        assert {n["template"] for n in found} >= {"cart_reminder_1"}
        listed = (await client.get(f"{url}/v1/journeys", headers=ADMIN)).json()["journeys"]
        by_id = {j["id"]: j for j in listed}
        assert set(by_id) == {path.stem for path in JOURNEY_FILES.glob("*.yaml")}
        cart = by_id["abandoned_cart"]
        assert cart["entered"] >= 1
        assert cart["emails"].get("pending", 0) + cart["emails"].get("sent", 0) >= 1
        one = (await client.get(f"{url}/v1/journeys/abandoned_cart", headers=ADMIN)).json()
        assert one["definition"]["id"] == "abandoned_cart"
        assert one["steps"] == len(one["definition"]["steps"])
        assert (await client.get(f"{url}/v1/journeys/nope", headers=ADMIN)).status_code == 404

        address = f"{user}@shop.example"
        put = await client.put(
            f"{url}/v1/suppressions/{address.upper()}", json={"reason": "complaint"}, headers=ADMIN
        )
        assert put.json() == {"address": address, "reason": "complaint", "added": True}
        page = (await client.get(f"{url}/v1/suppressions", headers=ADMIN)).json()
        assert address in {s["address"] for s in page["suppressions"]}
        assert (await client.delete(f"{url}/v1/suppressions/{address}", headers=ADMIN)).is_success
        page = (await client.get(f"{url}/v1/suppressions", headers=ADMIN)).json()
        assert address not in {s["address"] for s in page["suppressions"]}
        bad = await client.put(f"{url}/v1/suppressions/not-an-address", json={}, headers=ADMIN)
        assert bad.status_code == 422
        assert (await client.get(f"{url}/v1/journeys")).status_code == 401


async def test_the_reminder_is_delivered_over_smtp_with_one_click_unsubscribe(
    notify: RunningService,
    storefront: Storefront,
    database: AsyncEngine,
    inbox: MailpitInbox,
) -> None:
    now = datetime.now(UTC)
    user = f"smtp-{uuid.uuid4().hex[:8]}"
    await storefront.send([shopper(user, now), cart_change(user, now - timedelta(hours=5))])
    customer_id = customer_id_for(("user", user))

    async def delivered() -> list[dict[str, Any]]:
        return [
            m for m in await inbox.messages() if m["To"][0]["Address"] == f"{user}@shop.example"
        ]

    [message] = await wait_for(delivered, seconds=60)
    headers = await inbox.headers(message["ID"])
    assert headers["List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]
    assert "/u/" in headers["List-Unsubscribe"][0]
    body = await inbox.message(message["ID"])
    assert "tent-2p" in body["Text"] or "Tent" in body["Text"]

    async def sent() -> list[dict[str, Any]]:
        found = await notifications_of(database, customer_id)
        return [n for n in found if n["template"] == "cart_reminder_1" and n["status"] == "sent"]

    await wait_for(sent, seconds=30)
    async with database.connect() as connection:
        message_id = await connection.scalar(
            text(
                "SELECT message_id FROM notify.notifications WHERE customer_id = :id "
                "AND template = 'cart_reminder_1'"
            ),
            {"id": customer_id},
        )
    assert f"<{message['MessageID']}>" == message_id


async def test_opens_clicks_and_one_click_unsubscribe_come_back_into_the_profile(
    notify: RunningService,
    profile: RunningService,
    storefront: Storefront,
    database: AsyncEngine,
    inbox: MailpitInbox,
    settings: ServiceSettings,
) -> None:
    now = datetime.now(UTC)
    user = f"links-{uuid.uuid4().hex[:8]}"
    address = f"{user}@shop.example"
    await storefront.send([shopper(user, now), cart_change(user, now - timedelta(hours=5))])
    customer_id = customer_id_for(("user", user))

    async def delivered() -> list[dict[str, Any]]:
        return [m for m in await inbox.messages() if m["To"][0]["Address"] == address]

    [message] = await wait_for(delivered, seconds=60)
    html = (await inbox.message(message["ID"]))["HTML"]
    pixel = re.search(r'src="([^"]*/t/o/[^"]+)"', html)
    click = re.search(r'href="([^"]*/t/c/[^"]+)"', html)
    assert pixel is not None
    assert click is not None
    unsubscribe = re.search(
        r"<(http[^>]+/u/[^>]+)>", (await inbox.headers(message["ID"]))["List-Unsubscribe"][0]
    )
    assert unsubscribe is not None
    async with httpx.AsyncClient(timeout=30) as client:
        opened = await client.get(local_link(html_unescape(pixel.group(1)), notify))
        assert opened.status_code == 200
        assert opened.headers["content-type"] == "image/gif"
        clicked = await client.get(local_link(html_unescape(click.group(1)), notify))
        assert clicked.status_code in (302, 303)
        assert clicked.headers["location"].startswith("http")
        forged = await client.get(local_link(html_unescape(click.group(1)), notify) + "x")
        assert forged.status_code in (400, 404)
        # RFC 8058: the mail client posts this body to the List-Unsubscribe URL.
        gone = await client.post(
            local_link(unsubscribe.group(1), notify),
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert gone.status_code == 200
        listed = (await client.get(f"{notify.url}/v1/suppressions", headers=ADMIN)).json()
        assert address in {s["address"] for s in listed["suppressions"]}

        async def folded() -> dict[str, Any] | None:
            answer = await client.get(f"{profile.url}/v1/customers/{customer_id}", headers=ADMIN)
            found = answer.json()
            engaged = found["email_engagement"]
            done = (
                engaged["opened_count"] >= 1
                and engaged["clicked_count"] >= 1
                and found["consent"]["email_marketing"] == "opted_out"
            )
            return found if done else None

        await wait_for(folded, seconds=60)

    # The next marketing email to them is suppressed, not sent.
    await storefront.send([cart_change(user, now - timedelta(hours=4, minutes=50), n=2)])

    async def suppressed() -> list[dict[str, Any]]:
        found = await notifications_of(database, customer_id)
        return [
            n for n in found if n["journey"] == "abandoned_cart" and n["status"] == "suppressed"
        ]

    [held_back] = await wait_for(suppressed, seconds=60)
    assert held_back["reason"] in ("suppressed_address", "unsubscribed")
    assert len(await delivered()) == 1

    # notifications.v1 tells each reaction once, for the email's journey and template (the
    # forged click is none); one more is never found.
    reactions = await read_messages(
        settings,
        NOTIFICATIONS,
        lambda m: (
            m.key == customer_id.encode()
            and orjson.loads(m.value or b"")["type"] in ("opened", "clicked", "unsubscribed")
        ),
        count=4,
        wait_seconds=10,
    )
    told = sorted((orjson.loads(m.value or b"") for m in reactions), key=lambda r: r["type"])
    assert [r["type"] for r in told] == ["clicked", "opened", "unsubscribed"]
    assert {(r["journey"], r["template"]) for r in told} == {("abandoned_cart", "cart_reminder_1")}
    assert told[0]["url"].startswith("http")
    assert len({r["event_id"] for r in told}) == 3


async def test_two_notify_processes_share_the_work_and_send_each_email_once(
    notify: RunningService,
    settings: ServiceSettings,
    mailpit: LocalMailpit,
    storefront: Storefront,
    inbox: MailpitInbox,
) -> None:
    second = start_service(
        "notify",
        settings,
        RETAIN_SMTP_HOST=mailpit.smtp_host,
        RETAIN_SMTP_PORT=str(mailpit.smtp_port),
    )
    try:
        now = datetime.now(UTC)
        run = uuid.uuid4().hex[:6]
        users = [f"pair-{run}-{i}" for i in range(40)]
        events = []
        for user in users:
            events += [shopper(user, now), cart_change(user, now - timedelta(hours=5))]
        await storefront.send(events)
        addresses = {f"{user}@shop.example" for user in users}

        async def all_delivered() -> list[str]:
            found = [m["To"][0]["Address"] for m in await inbox.messages()]
            mine = [a for a in found if a in addresses]
            return mine if set(mine) == addresses else []

        await wait_for(all_delivered, seconds=90)
        await asyncio.sleep(3)  # anything sent twice would have arrived by now
        found = [m["To"][0]["Address"] for m in await inbox.messages()]
        mine = [a for a in found if a in addresses]
        assert sorted(mine) == sorted(addresses)  # each exactly once
    finally:
        second.stop()
