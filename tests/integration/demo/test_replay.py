"""`retain replay cdnow` through the real ingest, profile and scoring: every CDNOW order lands
exactly once, and scoring's summary of those customers is lifetimes' summary of the file."""

import asyncio
import contextlib
import io
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.demo.orders import cdnow_orders
from services.devstack.cli import main as cli_main
from services.devstack.demo_cli import cdnow_file
from services.devstack.kafka_ops import describe_topics
from services.profile.domain.identity import customer_id_for
from services.runtime.db import create_engine
from services.runtime.settings import ServiceSettings
from services.scoring.domain.ledger import LedgerOrder
from services.scoring.domain.summary import Purchase, Summaries, summarize
from services.scoring.store import PostgresScoringStore
from tests.integration.helpers import RunningService
from tests.unit.scoring.test_clv_against_lifetimes import OBSERVATION_END, reference_summary

# 69,659 orders on the shared topics: after every test that reads them from the start or counts
# what scoring holds, so it meets every service the session started (slower than alone).
pytestmark = [pytest.mark.integration, pytest.mark.runs_last, pytest.mark.timeout(720)]
LEDGER_SECONDS = 600

ORDERS, CUSTOMERS = 69_659, 23_570


async def test_a_cdnow_replay_lands_every_order_once_and_scoring_summarises_it_as_lifetimes(
    ingest: RunningService,
    profile: RunningService,
    scoring: RunningService,
    write_key: str,
    settings: ServiceSettings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = ["--ingest-url", ingest.url, "--write-key", write_key, "--concurrency", "6"]
    await asyncio.to_thread(cli_main, ["replay", "cdnow", *target])
    assert f"{ORDERS:,} accepted, 0 rejected" in capsys.readouterr().out
    # Part of the file again: sent twice, counted once.
    head = tmp_path / "CDNOW_head.txt"
    head.write_text("\n".join(cdnow_file().read_text().splitlines()[:1001]) + "\n")
    await asyncio.to_thread(cli_main, ["replay", "cdnow", str(head), *target])
    assert "1,000 accepted, 0 rejected" in capsys.readouterr().out

    users = {order.customer_id for order in cdnow_orders(cdnow_file().read_text())}
    ids = {customer_id_for(("user", user)): user.removeprefix("cdnow-") for user in users}
    engine = create_engine(settings)
    try:
        ledger = await _ledger_once_complete(engine, sorted(ids), settings)
    finally:
        await engine.dispose()
    assert len(ledger) == CUSTOMERS
    assert sum(len(orders) for orders in ledger.values()) == ORDERS
    assert len({o.order_id for orders in ledger.values() for o in orders}) == ORDERS

    ours = Summaries.of(
        {
            ids[customer]: summary
            for customer, orders in ledger.items()
            if (summary := summarize((Purchase(o.at, o.revenue) for o in orders), OBSERVATION_END))
        }
    )
    theirs = reference_summary().sort_index()
    assert list(ours.customer_ids) == list(theirs.index)
    assert np.array_equal(ours.frequency, theirs["frequency"].to_numpy())
    assert np.array_equal(ours.recency, theirs["recency"].to_numpy())
    assert np.array_equal(ours.T, theirs["T"].to_numpy())
    np.testing.assert_allclose(ours.monetary_value, theirs["monetary_value"].to_numpy(), rtol=1e-9)


async def _ledger_once_complete(
    engine: AsyncEngine, ids: list[str], settings: ServiceSettings
) -> dict[str, list[LedgerOrder]]:
    """Scoring's orders of these customers, once all of them arrived (and a moment more, so a
    duplicate arriving late would be seen)."""
    deadline = time.monotonic() + LEDGER_SECONDS
    count = -1
    while time.monotonic() < deadline:
        async with engine.connect() as connection:
            count = (
                await connection.execute(
                    text("SELECT count(*) FROM scoring.orders WHERE customer_id = ANY(:ids)"),
                    {"ids": ids},
                )
            ).scalar_one()
        if count >= ORDERS:
            break
        await asyncio.sleep(2)
    if count < ORDERS:
        # Where it stopped: each group's members, their partitions and lag.
        described = io.StringIO()
        with contextlib.redirect_stdout(described):
            await describe_topics(settings)
        raise AssertionError(
            f"{count} of {ORDERS} orders in scoring's ledger after {LEDGER_SECONDS} s\n"
            + described.getvalue()
        )
    await asyncio.sleep(3)
    async with engine.connect() as connection:
        return await PostgresScoringStore(connection).orders(ids)
