"""Exact results through crashes and scaling: nothing lost, nothing counted twice.

Each test runs its own profile processes against a database of its own, so what they fold can
be checked without the suite's other profile consumer doing the work for them.
"""

import asyncio
import signal
import uuid
from decimal import Decimal
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.group import MemberAssignment
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from services.profile.tables import customers
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import RunningService, start_service
from tests.integration.profile.conftest import Storefront, order, wait_for

# Consumers of their own read the topics from the start: before anything floods them.
pytestmark = [pytest.mark.integration, pytest.mark.first]

USERS = 20
ORDERS_PER_USER = 10


def _workload(tag: str) -> tuple[list[dict[str, Any]], dict[str, Decimal]]:
    """Orders for USERS customers, with page views between them; and each one's net revenue."""
    events: list[dict[str, Any]] = []
    expected: dict[str, Decimal] = {}
    for u in range(USERS):
        user = f"{tag}-user-{u}"
        expected[user] = Decimal(0)
        for n in range(ORDERS_PER_USER):
            revenue = Decimal(f"{u + 1}.{n:02d}")
            events.append(order(user, f"{tag}-{u}-{n}", float(revenue)))
            events.append({"type": "page", "userId": user, "messageId": f"{tag}-{u}-{n}-page"})
            expected[user] += revenue
    return events, expected


async def _folded(database_url: str, expected: dict[str, Decimal]) -> bool:
    """True once every expected customer is in the database with exactly its orders."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(
                        customers.c.user_id, customers.c.orders_count, customers.c.net_revenue
                    ).where(customers.c.user_id.in_(expected))
                )
            ).all()
    finally:
        await engine.dispose()
    found = {row.user_id: (row.orders_count, row.net_revenue) for row in rows}
    return found == {user: (ORDERS_PER_USER, revenue) for user, revenue in expected.items()}


async def _customer_count(database_url: str) -> int:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(customers)) or 0)
    finally:
        await engine.dispose()


async def test_a_consumer_killed_mid_batch_and_restarted_gives_exact_results(
    settings: ServiceSettings,
    storefront: Storefront,
    isolated_database: str,
    processes: list[RunningService],
) -> None:
    group = f"kill-test-{uuid.uuid4().hex[:6]}"
    options = {"RETAIN_CONSUMER_GROUP": group, "RETAIN_BATCH_SIZE": "50"}
    events, expected = _workload(f"kill-{uuid.uuid4().hex[:6]}")
    first = start_service("profile", settings, isolated_database, **options)
    processes.append(first)
    await storefront.send(events)
    # Kill it without warning as soon as it has folded something, mid-stream.
    await wait_for(lambda: _customer_count(isolated_database), interval=0.05)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    assert not await _folded(isolated_database, expected), "killed too late to prove anything"

    processes.append(start_service("profile", settings, isolated_database, **options))
    assert await wait_for(lambda: _folded(isolated_database, expected), seconds=120)


async def test_two_consumers_in_one_group_share_the_partitions_and_stay_exact(
    settings: ServiceSettings,
    storefront: Storefront,
    isolated_database: str,
    processes: list[RunningService],
) -> None:
    group = f"pair-test-{uuid.uuid4().hex[:6]}"
    options = {"RETAIN_CONSUMER_GROUP": group, "RETAIN_BATCH_SIZE": "50"}
    events, expected = _workload(f"pair-{uuid.uuid4().hex[:6]}")
    processes.append(start_service("profile", settings, isolated_database, **options))
    processes.append(start_service("profile", settings, isolated_database, **options))

    assignments = await wait_for(lambda: _member_assignments(settings, group))
    assert len(assignments) == 2
    assert all(assignments), "each consumer owns some partitions"

    await storefront.send(events)
    assert await wait_for(lambda: _folded(isolated_database, expected), seconds=120)


async def _member_assignments(settings: ServiceSettings, group: str) -> list[int] | None:
    """Partitions per member of the group, once two members have joined."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        [description] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    # groups[0] = (error_code, group, state, protocol_type, protocol, members); a member is
    # (member_id, client_id, client_host, metadata, assignment).
    _error, _group, state, _type, _protocol, members = description.groups[0]
    if state != "Stable" or len(members) != 2:
        await asyncio.sleep(0.2)
        return None
    assigned = [MemberAssignment.decode(member[4]).assignment for member in members]
    return [sum(len(partitions) for _topic, partitions in topics) for topics in assigned]
