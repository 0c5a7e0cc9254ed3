"""The snapshot job's rows in PostgreSQL: today's levels and every day's revenue, from the
scores and the order ledger; a later snapshot the same day replaces the earlier one, so a
segment emptied meanwhile has no count left and a deleted order no revenue."""

from datetime import UTC, date, datetime, time, timedelta

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.scoring.analytics_store import AnalyticsStore, snapshot
from services.scoring.main import snapshot_parts

pytestmark = pytest.mark.integration

TODAY = date(2026, 12, 2)
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
ATTRIBUTION = timedelta(days=7)


async def _customer(
    engine: AsyncEngine, customer_id: str, tier: str, orders: list[tuple[str, date, float]]
) -> None:
    record = {
        "customer_id": customer_id,
        "currency": "EUR",
        "clv_historical": str(sum(amount for _, _, amount in orders)),
        "clv_predicted": "10",
        "rfm": {"recency": 5, "frequency": 1, "monetary": 3, "segment": "new"},
        "value_tier": tier,
        "ladder_step": "customer" if orders else "prospect",
        "lifecycle_stage": "acquisition",
        "churn_risk": 0.25,
    }
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO scoring.profiles (customer_id, revision, snapshot) "
                "VALUES (:id, 1, '{}') ON CONFLICT DO NOTHING"
            ),
            {"id": customer_id},
        )
        await connection.execute(
            text(
                "INSERT INTO scoring.scores (customer_id, revision, record, standing) "
                "VALUES (:id, 1, CAST(:record AS json), '{}') ON CONFLICT (customer_id) "
                "DO UPDATE SET record = excluded.record"
            ),
            {"id": customer_id, "record": orjson.dumps(record).decode()},
        )
        for order_id, day, amount in orders:
            await connection.execute(
                text(
                    "INSERT INTO scoring.orders (customer_id, order_id, ordered_at, revenue, "
                    "currency) VALUES (:id, :order_id, :at, :revenue, 'EUR')"
                ),
                {
                    "id": customer_id,
                    "order_id": order_id,
                    "at": datetime.combine(day, time(12), UTC),
                    "revenue": amount,
                },
            )


async def _figures(engine: AsyncEngine) -> dict[tuple[date, str, str], float]:
    async with engine.connect() as connection:
        rows = await AnalyticsStore(connection).figures(date(2026, 1, 1), TODAY)
    return {(day, currency, figure): value for day, currency, figure, value in rows}


async def _snapshot(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await snapshot(connection, snapshot_parts(ATTRIBUTION), TODAY, NOW)


async def test_a_snapshot_writes_levels_and_revenue_and_the_next_one_replaces_it(
    scoring_db: AsyncEngine,
) -> None:
    await _customer(
        scoring_db,
        "c1",
        "most_valuable",
        [("o1", TODAY - timedelta(days=1), 100.0), ("o2", TODAY, 50.0)],
    )
    await _customer(scoring_db, "c2", "low_value", [("o3", TODAY, 20.0)])
    await _snapshot(scoring_db)
    found = await _figures(scoring_db)
    assert found[(TODAY, "", "customers")] == 2
    assert found[(TODAY, "", "buyers")] == 2
    assert found[(TODAY, "", "repeat_rate")] == 0.5
    # Read back from the ledger: yesterday c1 had ordered once, c2 not yet.
    yesterday = TODAY - timedelta(days=1)
    assert found[(yesterday, "", "buyers")] == 1
    assert found[(yesterday, "", "repeat_rate")] == 0
    assert found[(date(2026, 12, 1), "EUR", "revenue")] == 100
    assert found[(TODAY, "EUR", "revenue")] == 70
    assert found[(TODAY, "", "customers:value_tier:most_valuable")] == 1
    assert found[(TODAY, "EUR", "clv_historical:value_tier:most_valuable")] == 150
    assert found[(TODAY, "", "customers:rfm_grid:r5f1")] == 2

    # c1 moves to low_value and loses the order of the 1st (erased, say): the segment it left
    # and the day it emptied keep nothing from the earlier snapshot.
    await _customer(scoring_db, "c1", "low_value", [])
    async with scoring_db.begin() as connection:
        await connection.execute(text("DELETE FROM scoring.orders WHERE order_id = 'o1'"))
    await _snapshot(scoring_db)
    found = await _figures(scoring_db)
    assert (TODAY, "", "customers:value_tier:most_valuable") not in found
    assert found[(TODAY, "", "customers:value_tier:low_value")] == 2
    assert (date(2026, 12, 1), "EUR", "revenue") not in found
    assert found[(TODAY, "EUR", "revenue")] == 70


async def _transition(
    engine: AsyncEngine, event_id: str, dimension: str, before: str | None, after: str, day: date
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO scoring.transitions (event_id, customer_id, dimension, "
                "from_segment, to_segment, at, day) VALUES (:id, 'c9', :dimension, :before, "
                ":after, :at, :day)"
            ),
            {
                "id": event_id,
                "dimension": dimension,
                "before": before,
                "after": after,
                "at": datetime.combine(day, time(9), UTC),
                "day": day,
            },
        )


async def test_moves_between_segments_are_counted_on_their_days_from_the_transitions(
    scoring_db: AsyncEngine,
) -> None:
    yesterday = TODAY - timedelta(days=1)
    await _transition(scoring_db, "e1", "rfm_segment", "new", "loyal", yesterday)
    await _transition(scoring_db, "e2", "rfm_segment", "new", "loyal", yesterday)
    await _transition(scoring_db, "e3", "rfm_segment", "loyal", "at_risk", TODAY)
    await _transition(scoring_db, "e4", "ladder_step", "prospect", "first_order", TODAY)
    # A first segment is not a move; value tiers are not charted as moves.
    await _transition(scoring_db, "e5", "rfm_segment", None, "new", TODAY)
    await _transition(scoring_db, "e6", "value_tier", "low_value", "high_value", TODAY)
    await _snapshot(scoring_db)
    moves = {k: v for k, v in (await _figures(scoring_db)).items() if k[2].startswith("moves:")}
    assert moves == {
        (yesterday, "", "moves:rfm_segment:new>loyal"): 2,
        (TODAY, "", "moves:rfm_segment:loyal>at_risk"): 1,
        (TODAY, "", "moves:ladder_step:prospect>first_order"): 1,
    }

    # The customer is erased with their transitions: yesterday's moves go with them.
    async with scoring_db.begin() as connection:
        await connection.execute(text("DELETE FROM scoring.transitions WHERE event_id = 'e1'"))
    await _snapshot(scoring_db)
    found = await _figures(scoring_db)
    assert found[(yesterday, "", "moves:rfm_segment:new>loyal")] == 1
