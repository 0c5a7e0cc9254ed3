"""Two consumers folding referrals and merges that cross partitions take their locks in one
global order: no deadlock, and exact results."""

import contextlib
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from services.profile.tables import customers
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import RunningService, start_service
from tests.integration.profile.conftest import Storefront, order, wait_for

# Consumers of their own read the topics from the start: before anything floods them.
pytestmark = [pytest.mark.integration, pytest.mark.first]

USERS = 24
ROUNDS = 4


def _workload(tag: str) -> tuple[list[dict[str, Any]], dict[str, tuple[int, Decimal, int]]]:
    """A ring of referrals (user i referred by user i+1) across partitions, anonymous browsing
    merged on identify, and orders that move every referrer's figures, round after round.

    Returns the events and, per user: orders, net revenue, customers referred.
    """
    users = [f"{tag}-u{i}" for i in range(USERS)]
    events: list[dict[str, Any]] = []
    expected = {user: (ROUNDS, Decimal(0), 1) for user in users}
    for i, user in enumerate(users):
        referrer = users[(i + 1) % USERS]
        device = f"{tag}-device-{i}"
        events += [
            {"type": "page", "anonymousId": device, "messageId": f"{device}-page"},
            {"type": "identify", "userId": user, "anonymousId": device,
             "messageId": f"{device}-identify", "traits": {"email": f"{user}@shop.example"}},
            {"type": "track", "userId": user, "event": "Referral Code Used",
             "messageId": f"{user}-referral",
             "properties": {"referral_code": f"{referrer}-code", "referrer_id": referrer}},
        ]  # fmt: skip
    for n in range(ROUNDS):
        for i, user in enumerate(users):
            revenue = Decimal(f"{i + 1}.{n:02d}")
            events.append(order(user, f"{user}-o{n}", float(revenue)))
            orders, total, referred = expected[user]
            expected[user] = (orders, total + revenue, referred)
    return events, expected


async def _deadlocks(database_url: str) -> int:
    url = make_url(database_url)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return int(
                await connection.scalar(
                    text("SELECT deadlocks FROM pg_stat_database WHERE datname = :name"),
                    {"name": url.database},
                )
                or 0
            )
    finally:
        await engine.dispose()


async def _results(
    database_url: str, users: list[str]
) -> dict[str, tuple[int, Decimal, int, Decimal]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(customers.c.user_id, customers.c.snapshot).where(
                        customers.c.user_id.in_(users)
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    return {
        row.user_id: (
            row.snapshot["commerce"]["orders_count"],
            Decimal(row.snapshot["commerce"]["net_revenue"]),
            row.snapshot["referrals"]["referred_customers_count"],
            Decimal(row.snapshot["referrals"]["referred_revenue"]),
        )
        for row in rows
        if row.snapshot
    }


async def test_two_consumers_with_crossing_referrals_and_merges_never_deadlock(
    settings: ServiceSettings,
    storefront: Storefront,
    isolated_database: str,
    processes: list[RunningService],
) -> None:
    tag = f"locks-{uuid.uuid4().hex[:6]}"
    events, expected = _workload(tag)
    # Small batches: many transactions, each touching referrers on the other consumer's side.
    options = {"RETAIN_CONSUMER_GROUP": f"group-{tag}", "RETAIN_BATCH_SIZE": "10"}
    processes.append(start_service("profile", settings, isolated_database, **options))
    processes.append(start_service("profile", settings, isolated_database, **options))
    await storefront.send(events)

    users = [f"{tag}-u{i}" for i in range(USERS)]  # the ring's order, as in the workload
    referrer_of = {users[i]: users[(i + 1) % USERS] for i in range(USERS)}
    referred_by = {referrer: user for user, referrer in referrer_of.items()}
    want = {
        user: (orders, revenue, referred, expected[referred_by[user]][1])
        for user, (orders, revenue, referred) in expected.items()
    }

    async def exact() -> bool:
        return await _results(isolated_database, users) == want

    with contextlib.suppress(AssertionError):
        await wait_for(exact, seconds=90)
    assert await _results(isolated_database, users) == want
    assert await _deadlocks(isolated_database) == 0
