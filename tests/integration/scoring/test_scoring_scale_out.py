"""Two scoring processes in the same consumer groups stay exact."""

import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.profile.domain.identity import customer_id_for
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import RunningService, start_service
from tests.integration.profile.conftest import Storefront, order, wait_for

pytestmark = pytest.mark.integration

USERS = 24


async def _scores(database_url: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT customer_id, CAST(record AS text) AS record FROM scoring.scores "
                    "WHERE customer_id = ANY(CAST(:ids AS text[]))"
                ),
                {"ids": ids},
            )
            return {row.customer_id: orjson.loads(row.record) for row in rows}
    finally:
        await engine.dispose()


async def test_two_scoring_processes_in_one_group_keep_every_score_exact(
    settings: ServiceSettings,
    profile: RunningService,
    storefront: Storefront,
    isolated_database: str,
    processes: list[RunningService],
) -> None:
    tag = f"pair-{uuid.uuid4().hex[:6]}"
    options = {"RETAIN_SCORING_CONSUMER_GROUP": f"scoring-{tag}"}
    for _ in range(2):
        processes.append(start_service("scoring", settings, isolated_database, **options))
    users = [f"{tag}-u{i}" for i in range(USERS)]
    events = []
    for i, user in enumerate(users):
        events += [order(user, f"{user}-o{n}", float(i + 1 + n)) for n in range(3)]
    await storefront.send(events)
    ids = [customer_id_for(("user", user)) for user in users]
    want = {
        customer_id_for(("user", user)): Decimal(3 * (i + 1) + 3) for i, user in enumerate(users)
    }

    async def settled() -> bool:
        found = await _scores(isolated_database, ids)
        return len(found) == USERS and all(
            Decimal(record["clv_historical"]) == want[customer_id]
            and record["ladder_step"] == "client"
            for customer_id, record in found.items()
        )

    assert await wait_for(settled, seconds=90)
