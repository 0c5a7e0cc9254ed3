"""Events posted to ingest reach scores.v1 through profile and scoring: standing, historical
value, transitions once, and erasure."""

import uuid
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from schemas.topics import LIFECYCLE, SCORES
from services.profile.domain.identity import customer_id_for
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import Message, RunningService, read_messages
from tests.integration.profile.conftest import ADMIN, Storefront, order, wait_for

pytestmark = pytest.mark.integration


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def _scores(settings: ServiceSettings, customer_id: str, count: int = 1) -> list[Message]:
    return await read_messages(
        settings, SCORES, lambda m: m.key == customer_id.encode(), count, wait_seconds=60
    )


def _latest(messages: list[Message]) -> dict[str, Any]:
    return dict(orjson.loads(messages[-1].value or b"null"))


async def test_customers_are_scored_from_their_profile_and_orders(
    scoring: RunningService, storefront: Storefront, settings: ServiceSettings
) -> None:
    buyer, prospect = _unique("buyer"), _unique("prospect")
    await storefront.send(
        [
            {"type": "identify", "userId": prospect, "messageId": _unique("id"),
             "traits": {"email": f"{prospect}@shop.example"}},
            order(buyer, _unique("o"), 40.0),
            order(buyer, _unique("o"), 2.5),
        ]
    )  # fmt: skip
    prospect_id = customer_id_for(("user", prospect))
    [first] = await _scores(settings, prospect_id)
    scored = _latest([first])
    assert (scored["lifecycle_stage"], scored["ladder_step"], scored["value_tier"]) == (
        "selection",
        "prospect",
        "low_value",
    )
    assert scored["rfm"] is None

    buyer_id = customer_id_for(("user", buyer))

    async def settled() -> dict[str, Any] | None:
        # The profile and the ledger (order_completed) arrive on two topics: scores follow
        # each, and settle once both are in.
        messages = await read_messages(
            settings, SCORES, lambda m: m.key == buyer_id.encode(), 20, wait_seconds=2
        )
        latest = _latest(messages) if messages else None
        return latest if latest and latest["lifecycle_stage"] == "acquisition" else None

    scored = await wait_for(settled, seconds=60)
    assert Decimal(scored["clv_historical"]) == Decimal("42.5")
    assert scored["lifecycle_stage"] == "acquisition"  # first order today
    assert scored["ladder_step"] == "client"  # two orders, and nothing says they left
    assert scored["model"] == "insufficient_data"  # no refit yet: historical values only
    assert Decimal(scored["clv_predicted"]) == 0
    assert scored["currency"] == "EUR"

    # Each stage the customer went through was announced once, however often they were
    # rescored (selection first when the profile came before the ledger's orders).
    stages = await read_messages(
        settings,
        LIFECYCLE,
        lambda m: m.key == buyer_id.encode() and b'"stage_changed"' in (m.value or b""),
        5,
        wait_seconds=5,
    )
    to_stages = [orjson.loads(m.value or b"")["to_stage"] for m in stages]
    assert to_stages[-1] == "acquisition"
    assert len(to_stages) == len(set(to_stages))


async def test_an_erased_customer_gets_a_scores_tombstone(
    scoring: RunningService,
    profile: RunningService,
    storefront: Storefront,
    settings: ServiceSettings,
) -> None:
    user = _unique("gone")
    await storefront.send([order(user, _unique("o"), 12.0)])
    customer_id = customer_id_for(("user", user))
    await _scores(settings, customer_id)
    async with httpx.AsyncClient(timeout=10) as client:
        erased = await client.delete(f"{profile.url}/v1/customers/{customer_id}", headers=ADMIN)
    assert erased.status_code == 200
    tombstones = await read_messages(
        settings,
        SCORES,
        lambda m: m.key == customer_id.encode() and m.value is None,
        2,
        wait_seconds=15,
    )
    assert len(tombstones) == 1  # once, though both profiles.v1 and lifecycle.v1 said so
