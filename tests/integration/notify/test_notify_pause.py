"""Pausing a journey from the command line: while paused no one enters it; once resumed it
takes customers again. (A run held by a pause and going on after it: tests/unit/notify.)"""

import asyncio
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.profile.domain.identity import customer_id_for
from tests.integration.helpers import ADMIN_TOKEN, RunningService
from tests.integration.notify.shoppers import cart_change, completed, notifications_of, shopper
from tests.integration.profile.conftest import Storefront, wait_for

pytestmark = pytest.mark.integration

RETAIN = str(Path(sys.executable).parent / "retain")


async def _retain(notify: RunningService, *args: str) -> str:
    done = await asyncio.to_thread(
        subprocess.run,
        [RETAIN, "journeys", *args, "--url", notify.url, "--token", ADMIN_TOKEN],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _entered(database: AsyncEngine) -> int:
    async with database.connect() as connection:
        found = await connection.scalar(
            text(
                "SELECT count FROM notify.journey_counts "
                "WHERE journey = 'abandoned_cart' AND counter = 'entered'"
            )
        )
    return int(found or 0)


async def test_a_paused_journey_takes_no_one_until_it_is_resumed(
    notify: RunningService, storefront: Storefront, database: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    paused = await _retain(notify, "pause", "abandoned_cart", "--by", "ops-test")
    assert paused.startswith("abandoned_cart paused by ops-test at ")
    try:
        listed = await _retain(notify, "list")
        assert any(line.split()[:2] == ["abandoned_cart", "paused"] for line in listed.split("\n"))
        before = await _entered(database)
        user = f"paused-{uuid.uuid4().hex[:8]}"
        # A cart left five hours ago (its reminder due at once), then an order: once the
        # order's own email is decided, the cart before it on the same partition was seen.
        await storefront.send([shopper(user, now), cart_change(user, now - timedelta(hours=5))])
        await storefront.send([completed(user, now)])
        customer_id = customer_id_for(("user", user))

        async def thanked() -> list[dict[str, Any]]:
            found = await notifications_of(database, customer_id)
            return found if any(n["template"] == "order_thank_you" for n in found) else []

        decided = await wait_for(thanked, seconds=60)
        assert [n for n in decided if n["journey"] == "abandoned_cart"] == []
        assert await _entered(database) == before
    finally:
        resumed = await _retain(notify, "resume", "abandoned_cart")
    assert resumed.startswith("abandoned_cart resumed")

    user = f"resumed-{uuid.uuid4().hex[:8]}"
    await storefront.send([shopper(user, now), cart_change(user, now - timedelta(hours=5))])
    customer_id = customer_id_for(("user", user))

    async def reminded() -> bool:
        found = await notifications_of(database, customer_id)
        return any(n["template"] == "cart_reminder_1" for n in found)

    await wait_for(reminded, seconds=60)
