"""Journeys that react to scoring: a customer's second order makes scoring move them up the
loyalty ladder (segment_changed on lifecycle.v1, customer -> client), and notify congratulates
them on the new step, once, with what it brings; the post-purchase thank-you of each order
goes too."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.profile.domain.identity import customer_id_for
from tests.integration.helpers import MailpitInbox, RunningService
from tests.integration.notify.shoppers import shopper
from tests.integration.profile.conftest import ADMIN, Storefront, order, wait_for
from tests.integration.scoring.conftest import scoring  # noqa: F401 (the session's scoring)

# Before any refit: with a fitted model the first order can already raise the customer's value
# tier, and that congratulation would take the day's one marketing email (the frequency cap).
pytestmark = [pytest.mark.integration, pytest.mark.first]


async def test_a_second_order_moves_the_customer_up_the_ladder_and_notify_congratulates_them(
    notify: RunningService,
    scoring: RunningService,  # noqa: F811 (the fixture imported above)
    storefront: Storefront,
    inbox: MailpitInbox,
) -> None:
    now = datetime.now(UTC)
    user = f"regular-{uuid.uuid4().hex[:6]}"
    address, customer_id = f"{user}@shop.example", customer_id_for(("user", user))
    yesterday = (now - timedelta(hours=26)).isoformat()
    await storefront.send(
        [shopper(user, now), order(user, f"{user}-o1", 80.0, timestamp=yesterday)]
    )

    async def scored_as_customer() -> bool:
        # A customer scoring first sees with two orders is not a move up the ladder: the second
        # order must come once they stand on the first step.
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.get(f"{scoring.url}/v1/scores/{customer_id}", headers=ADMIN)
        return answer.status_code == 200 and answer.json()["ladder_step"] == "customer"

    await wait_for(scored_as_customer, seconds=60)
    await storefront.send(
        [order(user, f"{user}-o2", 120.0, timestamp=(now - timedelta(hours=1)).isoformat())]
    )

    async def congratulated() -> list[dict[str, str]]:
        found = await inbox.messages_to(address)
        return [m for m in found if "Regular" in m["Subject"]]

    try:
        [message] = await wait_for(congratulated, seconds=90)
    except AssertionError:  # say what scoring and notify made of the customer
        async with httpx.AsyncClient(timeout=30) as client:
            scores = await client.get(f"{scoring.url}/v1/scores/{customer_id}", headers=ADMIN)
            emails = await client.get(
                f"{notify.url}/v1/customers/{customer_id}/notifications", headers=ADMIN
            )
        raise AssertionError(f"no congratulations: {scores.text} {emails.text}") from None
    assert message["Subject"] == "Ada, you are now a Regular at Retain Shop"
    body = await inbox.message(message["ID"])
    assert "offers picked for regulars" in body["Text"]  # what the new step brings

    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.get(f"{scoring.url}/v1/scores/{customer_id}", headers=ADMIN)
        assert answer.json()["ladder_step"] == "client"

        async def both_thanked() -> list[dict[str, str]]:
            emails = await client.get(
                f"{notify.url}/v1/customers/{customer_id}/notifications", headers=ADMIN
            )
            rows = emails.json()["notifications"]
            sent = [(n["template"], n["status"]) for n in rows]
            return rows if sent.count(("order_thank_you", "sent")) == 2 else []

        rows = await wait_for(both_thanked, seconds=60)
    steps = [n for n in rows if n["journey"] == "ladder_step_up"]
    assert [(n["template"], n["status"]) for n in steps] == [("ladder_step_up", "sent")]
