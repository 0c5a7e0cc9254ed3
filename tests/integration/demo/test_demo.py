"""`retain demo` through the real ingest, profile and scoring: every simulated event lands,
sending the same seed again changes nothing, and the spend reaches channel economics."""

import asyncio
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.demo.storefront import Shape, history, spend_plan
from services.devstack.cli import main as cli_main
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import ADMIN_TOKEN, RunningService
from tests.integration.profile.conftest import ADMIN, customer_by_user, wait_for

# Spend on every paid channel this month, and a shop's history: after the tests that count.
pytestmark = [pytest.mark.integration, pytest.mark.runs_last]

SEED = 424242
UNTIL = datetime.now(UTC).date().isoformat()


async def test_the_demo_backfill_lands_once_however_often_it_is_sent(
    ingest: RunningService,
    profile: RunningService,
    scoring: RunningService,
    write_key: str,
    settings: ServiceSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = [
        "demo",
        *("--customers", "150", "--days", "60", "--seed", str(SEED), "--until", UNTIL),
        *("--ingest-url", ingest.url, "--write-key", write_key),
        *("--url", scoring.url, "--token", ADMIN_TOKEN),
    ]
    await asyncio.to_thread(cli_main, command)
    first = capsys.readouterr()
    # One day for the CLI and the test, even if the run crosses midnight.
    shape = Shape(SEED, 150, 60, datetime.fromisoformat(UNTIL).replace(tzinfo=UTC))
    events = list(history(shape))
    assert f"{len(events):,} events accepted, 0 rejected" in first.out
    assert "model: " in first.err  # refitted once the pipeline settled

    orders = Counter(e["userId"] for e in events if e.get("event") == "Order Completed")
    cancelled_or_refunded = {
        e["userId"] for e in events if e.get("event") in ("Order Cancelled", "Order Refunded")
    }
    buyer, count = next(
        (user, n) for user, n in orders.most_common() if user not in cancelled_or_refunded
    )

    async def folded() -> bool:
        found = await customer_by_user(profile.url, buyer)
        return found is not None and found["commerce"]["orders_count"] == count

    await wait_for(folded)
    # The same seed again: every event accepted again by ingest, but each counts once.
    await asyncio.to_thread(cli_main, [*command, "--no-refit"])
    assert f"{len(events):,} events accepted, 0 rejected" in capsys.readouterr().out
    await asyncio.sleep(3)
    again = await customer_by_user(profile.url, buyer)
    assert again is not None
    assert again["commerce"]["orders_count"] == count

    # Live mode: sessions happening now, for a few seconds.
    live = ["demo", "--no-backfill", "--live", "--live-for", "3", "--sessions-per-second", "5"]
    target = ["--ingest-url", ingest.url, "--write-key", write_key]
    await asyncio.to_thread(cli_main, [*live, *target])
    summary = capsys.readouterr().out.splitlines()[-1]
    assert summary.startswith("live: ")
    assert summary.endswith(" events accepted, 0 rejected")
    assert int(summary.split()[1].replace(",", "")) > 0

    async with httpx.AsyncClient(timeout=30) as client:
        channels = (await client.get(f"{scoring.url}/v1/channels", headers=ADMIN)).json()
    # A channel's spend is shared among its campaigns' and affiliates' rows, other tests'
    # shoppers' too; each channel and month's rows add up to every amount recorded for it.
    spent: dict[tuple[str, str], Decimal] = {}
    for row in channels["channels"]:
        if row["spend"] is not None:
            key = (row["channel"], row["month"])
            spent[key] = spent.get(key, Decimal(0)) + Decimal(row["spend"])
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as connection:
            stored = (
                await connection.execute(
                    text("SELECT channel, campaign, month, amount FROM scoring.spend")
                )
            ).all()
    finally:
        await engine.dispose()
    recorded: dict[tuple[str, str], Decimal] = {}
    for channel, _, month, amount in stored:
        recorded[channel, month] = recorded.get((channel, month), Decimal(0)) + amount
    whole_channel = {(c, m): a for c, campaign, m, a in stored if not campaign}
    for row in spend_plan(shape):
        assert whole_channel[row.channel, row.month] == row.amount  # what the demo set
        assert spent[row.channel, row.month] == recorded[row.channel, row.month]
