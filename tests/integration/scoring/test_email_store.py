"""The Email page's SQL in PostgreSQL: the snapshot attributes each order to the last click in
the window (the same answers as the pure core's rule), and an erasure deletes the customer's
clicks up to it while a merge gives them to the survivor."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.topics.notifications_v1 import NotificationClicked
from services.scoring.analytics_store import DailyRows
from services.scoring.email_store import PostgresEmailStore, email_snapshot
from services.scoring.store import PostgresScoringStore

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 10, 12, tzinfo=UTC)
WEEK = timedelta(days=7)


def clicked(customer_id: str, at: datetime, template: str, n: int) -> NotificationClicked:
    return NotificationClicked(
        type="clicked",
        notification_id=f"{customer_id}-n{n}",
        customer_id=customer_id,
        occurred_at=at,
        kind="marketing",
        template=template,
        journey="win_back",
        event_id=f"{customer_id}-e{n}",
        url="https://shop.example/p/1",
    )


async def _order(engine: AsyncEngine, customer_id: str, order_id: str, at: datetime) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO scoring.orders (customer_id, order_id, ordered_at, revenue, "
                "currency) VALUES (:id, :order_id, :at, 30, 'EUR')"
            ),
            {"id": customer_id, "order_id": order_id, "at": at},
        )


async def _clicks(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT customer_id, event_id FROM scoring.email_clicks ORDER BY 1, 2")
        )
        return [(r.customer_id, r.event_id) for r in rows]


async def test_the_snapshot_attributes_each_order_to_its_last_click_in_the_window(
    scoring_db: AsyncEngine,
) -> None:
    async with scoring_db.begin() as connection:
        await PostgresEmailStore(connection).add_clicks(
            [
                clicked("c1", NOW - WEEK, "wb_1", 1),  # exactly the window before o1
                clicked("c2", NOW - timedelta(days=3), "wb_1", 2),
                clicked("c2", NOW - timedelta(days=1), "wb_2", 3),  # c2's last before o2
                clicked("c3", NOW + timedelta(hours=1), "wb_1", 4),  # after c3's order
            ]
        )
    await _order(scoring_db, "c1", "o1", NOW)
    await _order(scoring_db, "c1", "o1-late", NOW + timedelta(seconds=1))  # past the window
    await _order(scoring_db, "c2", "o2", NOW)
    await _order(scoring_db, "c3", "o3", NOW)
    rows = DailyRows(NOW)
    async with scoring_db.connect() as connection:
        await email_snapshot(WEEK).write(connection, NOW.date(), rows)
    found = {(r["figure"], r["currency"]): r["value"] for r in rows.rows}
    assert found == {
        ("email_orders:win_back:wb_1", "EUR"): 1.0,
        ("email_revenue:win_back:wb_1", "EUR"): 30.0,
        ("email_orders:win_back:wb_2", "EUR"): 1.0,
        ("email_revenue:win_back:wb_2", "EUR"): 30.0,
    }
    assert {r["day"] for r in rows.rows} == {date(2026, 5, 10)}


async def test_an_erasure_deletes_the_clicks_up_to_it_and_a_merge_moves_them(
    scoring_db: AsyncEngine,
) -> None:
    async with scoring_db.begin() as connection:
        await PostgresEmailStore(connection).add_clicks(
            [
                clicked("c1", NOW - timedelta(days=1), "wb_1", 1),
                clicked("c1", NOW + timedelta(days=1), "wb_1", 2),  # after: they came back
                clicked("guest", NOW, "wb_1", 3),
            ]
        )
        store = PostgresScoringStore(connection)
        await store.forget_clicks({"c1": NOW})
        await store.move_clicks({"guest": "c1"})
    assert await _clicks(scoring_db) == [("c1", "c1-e2"), ("c1", "guest-e3")]
