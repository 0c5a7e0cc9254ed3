"""Test sends through the admin API: a template rendered as a journey would, delivered at once
to the address an operator names, through the real SMTP server; never recorded or tracked,
never to a suppressed address, and its unsubscribe link changes no customer's consent."""

import asyncio
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.profile.domain.identity import customer_id_for
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import MailpitInbox, RunningService, running_service
from tests.integration.notify.conftest import unused_port
from tests.integration.notify.shoppers import shopper
from tests.integration.profile.conftest import ADMIN, Storefront, wait_for

pytestmark = pytest.mark.integration

CART = {
    "type": "cart_activity",
    "cart_id": "c-1",
    "items": [{"product_id": "tent-2p", "name": "Trail tent", "price": "199.00", "quantity": 1}],
    "value": "199.00",
    "currency": "EUR",
}


async def _test_send(url: str, template: str, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            f"{url}/v1/templates/{template}/test-send", json=body, headers=ADMIN
        )


async def test_a_test_send_arrives_personalised_untracked_and_unrecorded(
    notify: RunningService,
    storefront: Storefront,
    inbox: MailpitInbox,
    database: AsyncEngine,
) -> None:
    user = f"tester-{uuid.uuid4().hex[:6]}"
    customer_id = customer_id_for(("user", user))
    await storefront.send([shopper(user, datetime.now(UTC))])

    async def held() -> bool:
        async with database.connect() as connection:
            return bool(
                await connection.scalar(
                    text("SELECT count(*) FROM notify.recipients WHERE customer_id = :id"),
                    {"id": customer_id},
                )
            )

    await wait_for(held, seconds=60)
    async with httpx.AsyncClient(timeout=30) as client:
        listed = (await client.get(f"{notify.url}/v1/templates", headers=ADMIN)).json()
    assert {"id": "cart_reminder_1", "kind": "marketing"} in listed["templates"]
    assert {"id": "order_thank_you", "kind": "transactional"} in listed["templates"]

    address = f"ops-{uuid.uuid4().hex[:6]}@shop.example"
    answer = await _test_send(
        notify.url, "cart_reminder_1", to=address, customer_id=customer_id, trigger=CART
    )
    assert answer.status_code == 200, answer.text
    sent = answer.json()
    assert sent["kind"] == "marketing"
    assert sent["subject"].startswith("[Test] ")
    [message] = await wait_for(lambda: inbox.messages_to(address), seconds=30)
    assert f"<{message['MessageID']}>" == sent["message_id"]
    assert message["Subject"] == sent["subject"]
    body = await inbox.message(message["ID"])
    assert "Ada" in body["Text"]  # the customer's profile
    assert "Trail tent" in body["Text"]  # the trigger's cart
    assert "/t/o/" not in body["HTML"]
    assert "/t/c/" not in body["HTML"]  # no open pixel, no tracked links
    headers = await inbox.headers(message["ID"])
    assert headers["List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]
    async with database.connect() as connection:
        recorded = await connection.scalar(
            text("SELECT count(*) FROM notify.notifications WHERE customer_id = :id"),
            {"id": customer_id},
        )
    assert recorded == 0

    # Its unsubscribe link suppresses the address it went to, and no one's consent changes.
    link = re.search(r"<(http[^>]+/u/[^>]+)>", headers["List-Unsubscribe"][0])
    assert link is not None
    path = link.group(1).split("/", 3)[3]
    async with httpx.AsyncClient(timeout=30) as client:
        gone = await client.post(
            f"{notify.url}/{path}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert gone.status_code == 200
        listed = (await client.get(f"{notify.url}/v1/suppressions", headers=ADMIN)).json()
        assert address in {s["address"] for s in listed["suppressions"]}
    await asyncio.sleep(2)  # an Unsubscribed touchpoint would have reached notify by now
    async with database.connect() as connection:
        profile = await connection.scalar(
            text("SELECT profile FROM notify.recipients WHERE customer_id = :id"),
            {"id": customer_id},
        )
    assert profile["consent"]["email_marketing"] == "opted_in"

    # ... and a second test to it is refused, naming why.
    again = await _test_send(notify.url, "cart_reminder_1", to=address)
    assert again.status_code == 409
    assert "suppression list (unsubscribed)" in again.json()["detail"]
    assert len(await inbox.messages_to(address)) == 1


@pytest.mark.parametrize(
    ("template", "body", "status", "says"),
    [
        ("no_such_template", {"to": "a@shop.example"}, 404, "no journey sends a template"),
        ("welcome", {"to": "a@shop.example", "customer_id": "nobody"}, 404, "no profile"),
        ("welcome", {"to": "not an address"}, 422, "to"),
        ("welcome", {"to": "a@shop.example", "cc": "b@shop.example"}, 422, "cc"),
        ("welcome", {}, 422, "to"),
    ],
)
async def test_a_test_send_that_cannot_go_says_why(
    notify: RunningService,
    inbox: MailpitInbox,
    template: str,
    body: dict[str, Any],
    status: int,
    says: str,
) -> None:
    answer = await _test_send(notify.url, template, **body)
    assert answer.status_code == status, answer.text
    assert says in answer.text
    assert await inbox.messages_to("a@shop.example") == []


async def test_a_test_send_the_smtp_server_does_not_take_is_a_502(
    settings: ServiceSettings, profile: RunningService
) -> None:
    with running_service(
        "notify", settings, RETAIN_SMTP_HOST="127.0.0.1", RETAIN_SMTP_PORT=str(unused_port())
    ) as unreachable:
        answer = await _test_send(unreachable.url, "welcome", to="ops@shop.example")
    assert answer.status_code == 502
    assert answer.json()["detail"].startswith("the SMTP server did not take it")


async def test_a_test_send_needs_the_admin_token(notify: RunningService) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            f"{notify.url}/v1/templates/welcome/test-send", json={"to": "a@shop.example"}
        )
    assert answer.status_code == 401
