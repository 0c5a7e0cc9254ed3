"""Events posted to ingest become profiles: exact counts, identity merges, reads, erasure."""

import uuid
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from schemas.topics import LIFECYCLE, PROFILES, TOUCHPOINTS, TOUCHPOINTS_DLQ
from services.profile.tables import customers, identities, touchpoints
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import Message, RunningService, read_messages
from tests.integration.profile.conftest import (
    ADMIN,
    Storefront,
    customer_by_user,
    order,
    wait_for,
)

pytestmark = pytest.mark.integration


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def _get(url: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url, params=params, headers=ADMIN)


async def test_events_become_a_profile_with_exact_counts_and_revenue(
    profile: RunningService, storefront: Storefront
) -> None:
    user = _unique("user")
    first, second = order(user, _unique("o"), 100.50), order(user, _unique("o"), 49.50)
    refund = {
        "type": "track",
        "userId": user,
        "event": "Order Refunded",
        "messageId": _unique("refund"),
        "properties": {"order_id": first["properties"]["order_id"], "total": 20.50},
    }
    pages = [
        {"type": "page", "userId": user, "name": "Home", "messageId": _unique("page")}
        for _ in range(3)
    ]
    identify = {
        "type": "identify",
        "userId": user,
        "messageId": _unique("identify"),
        "traits": {"email": f"{user}@shop.example", "plan": "gold"},
    }
    # The second order is sent twice (a client retry with the same messageId).
    await storefront.send([identify, *pages, first, second, second, refund])

    async def folded() -> dict[str, Any] | None:
        found = await customer_by_user(profile.url, user)
        return found if found and found["activity"]["page_views"] == 3 else None

    snapshot = await wait_for(lambda: _settled(profile.url, user, orders=2, refunded=True))
    snapshot = await wait_for(folded)
    assert snapshot["user_id"] == user
    assert snapshot["email"] == f"{user}@shop.example"
    assert snapshot["traits"]["plan"] == "gold"
    assert snapshot["commerce"]["orders_count"] == 2
    assert Decimal(snapshot["commerce"]["gross_revenue"]) == Decimal("150.00")
    assert Decimal(snapshot["commerce"]["net_revenue"]) == Decimal("129.50")
    assert snapshot["activity"]["page_views"] == 3


async def _settled(
    profile_url: str, user: str, *, orders: int, refunded: bool = False
) -> dict[str, Any] | None:
    found = await customer_by_user(profile_url, user)
    if not found or found["commerce"]["orders_count"] != orders:
        return None
    if refunded and Decimal(found["commerce"]["refunded_revenue"]) == 0:
        return None
    return found


async def test_anonymous_activity_is_merged_when_the_visitor_identifies(
    profile: RunningService, storefront: Storefront
) -> None:
    anonymous, user = _unique("anon"), _unique("user")
    browsing = [
        {"type": "page", "anonymousId": anonymous, "name": "Shoes", "messageId": _unique("p")}
        for _ in range(2)
    ]
    await storefront.send(browsing)

    async def anonymous_profile() -> dict[str, Any] | None:
        response = await _get(f"{profile.url}/v1/customers", anonymous_id=anonymous)
        found = response.json()["customers"]
        return found[0] if found and found[0]["activity"]["page_views"] == 2 else None

    visitor = await wait_for(anonymous_profile)
    # Identified on another device's partition: the link arrives keyed by the userId.
    await storefront.send(
        [
            {
                "type": "identify",
                "userId": user,
                "anonymousId": anonymous,
                "messageId": _unique("identify"),
            },
            order(user, _unique("o"), 10.0),
        ]
    )
    merged = await wait_for(lambda: _settled(profile.url, user, orders=1))
    assert merged["activity"]["page_views"] == 2  # the anonymous browsing counts
    assert anonymous in merged["anonymous_ids"]
    assert visitor["customer_id"] in merged["merged_customer_ids"]
    # The absorbed id resolves to the customer that absorbed it.
    response = await _get(f"{profile.url}/v1/customers/{visitor['customer_id']}")
    assert response.json()["customer_id"] == merged["customer_id"]


async def test_timeline_and_export_need_the_admin_token(
    profile: RunningService, storefront: Storefront, write_key: str
) -> None:
    user = _unique("user")
    events = [
        {
            "type": "track",
            "userId": user,
            "event": "Product Viewed",
            "messageId": _unique("view"),
            "timestamp": f"2026-11-0{day}T10:00:00Z",
            "properties": {"product_id": f"p-{day}"},
        }
        for day in (1, 2, 3)
    ]
    await storefront.send(events)
    snapshot = await wait_for(lambda: _with_views(profile.url, user, 3))
    customer_url = f"{profile.url}/v1/customers/{snapshot['customer_id']}"

    timeline = (await _get(f"{customer_url}/timeline", limit=2)).json()["touchpoints"]
    assert [t["event"]["properties"]["product_id"] for t in timeline] == ["p-3", "p-2"]
    exported = (await _get(f"{customer_url}/export")).json()
    assert exported["profile"]["customer_id"] == snapshot["customer_id"]
    assert {"kind": "user", "value": user} in exported["identities"]
    assert len(exported["touchpoints"]) == 3

    async with httpx.AsyncClient(timeout=10) as client:
        anonymous = await client.get(customer_url)
        with_write_key = await client.get(
            customer_url, headers={"Authorization": f"Bearer {write_key}"}
        )
    assert anonymous.status_code == 401
    assert with_write_key.status_code == 401
    assert (await _get(f"{profile.url}/v1/customers/cus_nobody")).status_code == 404


async def _with_views(profile_url: str, user: str, views: int) -> dict[str, Any] | None:
    found = await customer_by_user(profile_url, user)
    return found if found and found["activity"]["product_views"] == views else None


async def test_erasure_removes_the_customer_everywhere_the_profile_service_holds_them(
    profile: RunningService, storefront: Storefront, settings: ServiceSettings
) -> None:
    user = _unique("user")
    await storefront.send([order(user, _unique("o"), 30.0), order(user, _unique("o"), 5.0)])
    snapshot = await wait_for(lambda: _settled(profile.url, user, orders=2))
    customer_id: str = snapshot["customer_id"]

    async with httpx.AsyncClient(timeout=10) as client:
        erased = await client.delete(f"{profile.url}/v1/customers/{customer_id}", headers=ADMIN)
    assert erased.status_code == 200
    assert erased.json()["touchpoints_deleted"] == 2
    assert (await _get(f"{profile.url}/v1/customers/{customer_id}")).status_code == 404

    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as connection:
            for table in (customers, identities, touchpoints):
                count = await connection.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(table.c.customer_id == customer_id)
                )
                assert count == 0, table.name
    finally:
        await engine.dispose()

    def about(message: Message) -> bool:
        return message.key == customer_id.encode()

    tombstones = await read_messages(settings, PROFILES, lambda m: about(m) and m.value is None, 1)
    assert len(tombstones) == 1
    [erasure] = await read_messages(
        settings,
        LIFECYCLE,
        lambda m: about(m) and b'"customer_erased"' in (m.value or b""),
        1,
    )
    assert orjson.loads(erasure.value or b"")["customer_id"] == customer_id

    # Coming back after erasure starts a fresh profile.
    await storefront.send([order(user, _unique("o"), 7.0)])
    fresh = await wait_for(lambda: _settled(profile.url, user, orders=1))
    assert Decimal(fresh["commerce"]["net_revenue"]) == Decimal("7.0")


async def test_a_poison_message_goes_to_the_dead_letter_topic_and_folding_goes_on(
    profile: RunningService, storefront: Storefront, settings: ServiceSettings
) -> None:
    key = _unique("poison").encode()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(TOUCHPOINTS, key=key, value=b'{"not": "a touchpoint"}')
    finally:
        await producer.stop()
    [letter] = await read_messages(settings, TOUCHPOINTS_DLQ, lambda m: m.key == key, 1)
    dead = orjson.loads(letter.value or b"")
    assert dead["original_topic"] == TOUCHPOINTS
    assert dead["error_type"] == "ValidationError"
    assert dead["consumer_group"] == "retain-profile"

    user = _unique("user")
    await storefront.send([order(user, _unique("o"), 1.0)])
    await wait_for(lambda: _settled(profile.url, user, orders=1))


async def test_a_referrer_sees_the_customers_they_referred_and_their_revenue(
    profile: RunningService, storefront: Storefront
) -> None:
    referrer, referred = _unique("referrer"), _unique("referred")
    await storefront.send(
        [
            {"type": "identify", "userId": referrer, "messageId": _unique("identify")},
            {
                "type": "track",
                "userId": referred,
                "event": "Referral Code Used",
                "messageId": _unique("referral"),
                "properties": {"referral_code": "FRIEND10", "referrer_id": referrer},
            },
            order(referred, _unique("o"), 40.0),
            order(referred, _unique("o"), 2.5),
        ]
    )

    async def credited() -> dict[str, Any] | None:
        found = await customer_by_user(profile.url, referrer)
        if not found or found["referrals"]["referred_customers_count"] != 1:
            return None
        return found if Decimal(found["referrals"]["referred_revenue"]) == 42.5 else None

    snapshot = await wait_for(credited)
    assert snapshot["referrals"]["referred_customers_count"] == 1
    referred_profile = await customer_by_user(profile.url, referred)
    assert referred_profile is not None
    assert referred_profile["acquisition"]["referred_by_customer_id"] == snapshot["customer_id"]
    assert referred_profile["acquisition"]["referral_code"] == "FRIEND10"
