"""The Lifecycle page's part of the daily snapshot in PostgreSQL: the funnel of each day's
first-seen customers from their stored profiles (each saved with its cohort and furthest step)
and the cohort retention triangle from the order ledger, both rewritten for every day by the
next snapshot as customers move on and orders leave the ledger."""

import importlib
import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.topics.profiles_v1 import Activity, Commerce, ProfileSnapshot
from services.scoring.analytics_store import AnalyticsStore, snapshot
from services.scoring.domain.analytics.lifecycle import (
    FUNNEL_FIGURES,
    FUNNEL_STEPS,
    RETENTION_FIGURES,
    first_seen_on,
    furthest_step,
)
from services.scoring.domain.profile_view import ActivityView, CommerceView, ScoredProfile
from services.scoring.main import snapshot_parts
from services.scoring.score_batch import ProfileUpdate
from services.scoring.store import PostgresScoringStore

pytestmark = pytest.mark.integration

TODAY = date(2026, 12, 2)
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
NOV_1, NOV_2 = date(2026, 11, 1), date(2026, 11, 2)
SEEN_1, SEEN_2 = datetime(2026, 11, 1, 23, 30, tzinfo=UTC), datetime(2026, 11, 2, 8, tzinfo=UTC)


def _record(
    customer_id: str, seen: datetime, views: int, adds: int, starts: int, orders: int
) -> str:
    """A whole profiles.v1 record, as scoring stores it."""
    return ProfileSnapshot(
        customer_id=customer_id,
        revision=1,
        updated_at=NOW,
        traits={"name": "x" * 500},  # the activity object is not at the front of the JSON
        activity=Activity(
            first_seen_at=seen,
            page_views=3,
            product_views=views,
            cart_adds=adds,
            checkouts_started=starts,
        ),
        commerce=Commerce(orders_count=orders),
    ).model_dump_json()


def _projection(customer_id: str, seen: datetime | None, views: int, orders: int) -> str:
    return ScoredProfile(
        customer_id=customer_id,
        revision=1,
        updated_at=NOW,
        activity=ActivityView(first_seen_at=seen, product_views=views),
        commerce=CommerceView(orders_count=orders),
    ).model_dump_json()


async def _profiles(engine: AsyncEngine, snapshots: dict[str, str], revision: int = 1) -> None:
    """Saved as scoring saves each profiles.v1 record it consumes."""
    updates = [
        ProfileUpdate(
            customer_id,
            ScoredProfile.model_validate_json(raw).model_copy(update={"revision": revision}),
            raw.encode(),
        )
        for customer_id, raw in snapshots.items()
    ]
    async with engine.begin() as connection:
        await PostgresScoringStore(connection).save_profiles(updates)


async def _orders(engine: AsyncEngine, orders: list[tuple[str, str, date]]) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO scoring.orders (customer_id, order_id, ordered_at, revenue, currency) "
                "VALUES (:id, :order_id, :at, 10, NULL)"
            ),
            [
                {"id": c, "order_id": o, "at": datetime.combine(day, time(12), UTC)}
                for c, o, day in orders
            ],
        )


async def _snapshot_figures(engine: AsyncEngine) -> dict[tuple[date, str], float]:
    async with engine.begin() as connection:
        await snapshot(connection, snapshot_parts(timedelta(days=7)), TODAY, NOW)
    async with engine.connect() as connection:
        rows = await AnalyticsStore(connection).figures(
            date(2026, 1, 1), TODAY, (FUNNEL_FIGURES, RETENTION_FIGURES)
        )
    assert {currency for _, currency, _, _ in rows} <= {""}
    return {(day, figure): value for day, _, figure, value in rows}


async def test_the_funnel_per_first_seen_day_and_the_cohort_triangle_are_rewritten_each_time(
    scoring_db: AsyncEngine,
) -> None:
    await _profiles(
        scoring_db,
        {
            "visitor": _record("visitor", SEEN_1, 0, 0, 0, 0),
            "browser": _record("browser", SEEN_1, 4, 0, 0, 0),
            "carter": _record("carter", SEEN_1, 2, 1, 0, 0),
            "buyer": _record("buyer", SEEN_1, 1, 2, 1, 1),
            "phone": _projection("phone", SEEN_2, 0, 2),  # an order with no step before it
            "unseen": _projection("unseen", None, 0, 0),  # never seen: in no cohort
        },
    )
    await _orders(
        scoring_db,
        [
            ("buyer", "o1", date(2026, 9, 3)),
            ("buyer", "o2", date(2026, 11, 20)),
            ("once", "o3", date(2026, 9, 30)),
            ("phone", "o4", date(2026, 11, 2)),
            ("phone", "o5", date(2026, 11, 28)),  # twice in one month: counted once
        ],
    )
    found = await _snapshot_figures(scoring_db)
    assert [found[(NOV_1, f"funnel:{step}")] for step in FUNNEL_STEPS] == [4, 3, 2, 1, 1]
    assert [found[(NOV_2, f"funnel:{step}")] for step in FUNNEL_STEPS] == [1, 1, 1, 1, 1]
    september, november = date(2026, 9, 1), date(2026, 11, 1)
    assert [found[(september, f"retention:m{k}")] for k in range(4)] == [2, 0, 1, 0]
    assert [found[(november, f"retention:m{k}")] for k in range(2)] == [1, 0]
    assert (september, "retention:m4") not in found  # beyond today's month

    # The visitor comes back and adds to a cart (no Product Viewed sent: the cart counts as
    # having gone through a product view); the only September order of `once` leaves
    # the ledger (erased, say): the earlier days' rows are replaced, not added to.
    await _profiles(scoring_db, {"visitor": _record("visitor", SEEN_1, 0, 1, 0, 0)}, revision=2)
    async with scoring_db.begin() as connection:
        await connection.execute(text("DELETE FROM scoring.orders WHERE order_id = 'o3'"))
    found = await _snapshot_figures(scoring_db)
    assert [found[(NOV_1, f"funnel:{step}")] for step in FUNNEL_STEPS] == [4, 4, 3, 1, 1]
    assert [found[(september, f"retention:m{k}")] for k in range(4)] == [1, 0, 1, 0]


async def test_profiles_stored_before_the_funnel_columns_are_filled_by_the_same_rules(
    scoring_db: AsyncEngine,
) -> None:
    """The migration's SQL gives each stored profile the cohort and furthest step that
    first_seen_on() and furthest_step() give it when it is saved."""
    fill = importlib.import_module("services.scoring.migrations.versions.0011_profile_funnel")
    snapshots = {
        f"c{views}{adds}{starts}{orders}": _record(
            f"c{views}{adds}{starts}{orders}", SEEN_1, views, adds, starts, orders
        )
        for views, adds, starts, orders in itertools.product((0, 2), repeat=4)
    }
    snapshots["never-seen"] = _projection("never-seen", None, 1, 1)
    async with scoring_db.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO scoring.profiles (customer_id, revision, snapshot) "
                "VALUES (:id, 1, CAST(:snapshot AS json))"
            ),
            [{"id": customer_id, "snapshot": s} for customer_id, s in snapshots.items()],
        )
        await connection.execute(text(fill._FILL))
        found = {
            r.customer_id: (r.first_seen_on, r.funnel_step)
            for r in await connection.execute(
                text("SELECT customer_id, first_seen_on, funnel_step FROM scoring.profiles")
            )
        }
    expected = {}
    for customer_id, raw in snapshots.items():
        profile = ScoredProfile.model_validate_json(raw)
        seen = first_seen_on(profile)
        expected[customer_id] = (seen, furthest_step(profile) if seen else None)
    assert found == expected
    assert {step for _, step in found.values()} == {None, 0, 1, 2, 3, 4}
