"""Events posted to ingest reach scores.v1 through profile and scoring: standing, historical
value, transitions once, and erasure (with what reaches scoring late for an erased customer)."""

import uuid
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from schemas.topics import LIFECYCLE, SCORES
from schemas.topics.lifecycle_v1 import CustomerErased, OrderCompleted
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
    if scored["model"] != "fitted":  # no fitted model (earlier tests may have refitted)
        assert Decimal(scored["clv_predicted"]) == 0  # historical values only
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


async def _scalars(settings: ServiceSettings, query: str, **params: Any) -> list[Any]:
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as connection:
            return list(await connection.scalars(text(query), params))
    finally:
        await engine.dispose()


async def _applied(settings: ServiceSettings, partition: int, offset: int) -> bool:
    """Whether scoring's lifecycle.v1 consumer has applied the record at `offset`."""
    stored = await _scalars(
        settings,
        "SELECT next_offset FROM scoring.consumer_offsets "
        "WHERE group_id = 'retain-scoring-lifecycle' AND topic = :topic AND partition = :partition",
        topic=LIFECYCLE,
        partition=partition,
    )
    return bool(stored) and stored[0] > offset


async def _ledger(settings: ServiceSettings, customer_id: str) -> list[str]:
    return await _scalars(
        settings, "SELECT order_id FROM scoring.orders WHERE customer_id = :id", id=customer_id
    )


async def test_an_order_late_for_the_erasure_is_dropped_and_a_customer_who_returns_is_scored(
    scoring: RunningService,
    profile: RunningService,
    storefront: Storefront,
    settings: ServiceSettings,
) -> None:
    user = _unique("late")
    customer_id = customer_id_for(("user", user))
    key = customer_id.encode()
    await storefront.send([order(user, _unique("o"), 12.0)])
    await _scores(settings, customer_id)
    async with httpx.AsyncClient(timeout=10) as client:
        erased = await client.delete(f"{profile.url}/v1/customers/{customer_id}", headers=ADMIN)
    assert erased.status_code == 200
    [announced] = await read_messages(
        settings, LIFECYCLE, lambda m: m.key == key and b'"customer_erased"' in (m.value or b""), 1
    )
    erased_at = CustomerErased.model_validate_json(announced.value or b"").occurred_at
    await wait_for(partial(_applied, settings, announced.partition, announced.offset))

    # An order placed before the erasure reaches scoring after it (the two topics raced, or it
    # was held up on the way): it belongs to the erased customer.
    late = OrderCompleted(
        type="order_completed",
        event_id=_unique("e"),
        customer_id=customer_id,
        occurred_at=erased_at - timedelta(minutes=1),
        order_id=_unique("o"),
        revenue=Decimal(30),
        currency="EUR",
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            LIFECYCLE, key=key, value=late.model_dump_json().encode()
        )
    finally:
        await producer.stop()
    await wait_for(partial(_applied, settings, sent.partition, sent.offset))
    assert await _ledger(settings, customer_id) == []
    scores = await read_messages(settings, SCORES, lambda m: m.key == key, 10, wait_seconds=3)
    assert scores[-1].value is None  # the tombstone is still the last word

    # The customer comes back: a new customer, scored from the new order alone.
    comeback = _unique("o")
    await storefront.send([order(user, comeback, 20.0)])

    async def scored_again() -> dict[str, Any] | None:
        messages = await read_messages(settings, SCORES, lambda m: m.key == key, 20, wait_seconds=2)
        latest = orjson.loads(messages[-1].value) if messages and messages[-1].value else None
        return latest if latest and latest["lifecycle_stage"] == "acquisition" else None

    record = await wait_for(scored_again, seconds=60)
    assert Decimal(record["clv_historical"]) == 20
    assert await _ledger(settings, customer_id) == [comeback]
