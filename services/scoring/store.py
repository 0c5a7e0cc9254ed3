"""Scoring's storage in the scoring schema: every statement the use case needs, by name.

Rows travel as arrays (unnest), so each statement has one fixed text whatever the batch size.
"""

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.topics.profiles_v1 import ProfileSnapshot
from services.scoring.domain.score import LedgerOrder
from services.scoring.domain.transitions import Standing
from services.scoring.score_batch import StoredScores

_LOCK_CUSTOMERS = text(
    "SELECT pg_advisory_xact_lock(hashtext('retain:scoring:' || c)) "
    "FROM unnest(CAST(:ids AS text[])) AS c ORDER BY c"
)
_SAVE_PROFILES = text(
    "INSERT INTO scoring.profiles AS p (customer_id, revision, snapshot) "
    "SELECT c, r, CAST(s AS json) FROM unnest("
    "CAST(:ids AS text[]), CAST(:revisions AS bigint[]), CAST(:snapshots AS text[])"
    ") AS u(c, r, s) "
    "ON CONFLICT (customer_id) DO UPDATE SET revision = excluded.revision, "
    "snapshot = excluded.snapshot WHERE p.revision < excluded.revision"
)
_ADD_ORDERS = text(
    "INSERT INTO scoring.orders (customer_id, order_id, ordered_at, revenue, currency, categories) "
    "SELECT c, o, a, r, cur, CAST(cats AS text[]) FROM unnest("
    "CAST(:customer_ids AS text[]), CAST(:order_ids AS text[]), CAST(:ats AS timestamptz[]), "
    "CAST(:revenues AS numeric[]), CAST(:currencies AS text[]), CAST(:categories AS text[])"
    ") AS u(c, o, a, r, cur, cats) ON CONFLICT (customer_id, order_id) DO NOTHING"
)
_MOVE_ORDERS = text(
    "INSERT INTO scoring.orders (customer_id, order_id, ordered_at, revenue, currency, categories) "
    "SELECT m.survivor, o.order_id, o.ordered_at, o.revenue, o.currency, o.categories "
    "FROM scoring.orders AS o JOIN unnest(CAST(:absorbed AS text[]), "
    "CAST(:survivors AS text[])) AS m(absorbed, survivor) ON o.customer_id = m.absorbed "
    "ON CONFLICT (customer_id, order_id) DO NOTHING"
)
_FORGET = (
    text("DELETE FROM scoring.orders WHERE customer_id = ANY(CAST(:ids AS text[]))"),
    text("DELETE FROM scoring.profiles WHERE customer_id = ANY(CAST(:ids AS text[]))"),
)
_FORGET_SCORES = text(
    "DELETE FROM scoring.scores WHERE customer_id = ANY(CAST(:ids AS text[])) RETURNING customer_id"
)
_PROFILES = text(
    "SELECT customer_id, CAST(snapshot AS text) AS snapshot FROM scoring.profiles "
    "WHERE customer_id = ANY(CAST(:ids AS text[]))"
)
_ORDERS = text(
    "SELECT customer_id, order_id, ordered_at, revenue, currency, categories FROM scoring.orders "
    "WHERE customer_id = ANY(CAST(:ids AS text[])) ORDER BY customer_id, ordered_at, order_id"
)
_LOCK_SCORES = text(
    "SELECT customer_id, revision, CAST(record AS text) AS record, "
    "CAST(standing AS text) AS standing FROM scoring.scores "
    "WHERE customer_id = ANY(CAST(:ids AS text[])) ORDER BY customer_id FOR UPDATE"
)
_SAVE_SCORES = text(
    "INSERT INTO scoring.scores (customer_id, revision, record, standing) "
    "SELECT c, r, CAST(rec AS json), CAST(s AS json) FROM unnest("
    "CAST(:ids AS text[]), CAST(:revisions AS bigint[]), CAST(:records AS text[]), "
    "CAST(:standings AS text[])) AS u(c, r, rec, s) "
    "ON CONFLICT (customer_id) DO UPDATE SET revision = excluded.revision, "
    "record = excluded.record, standing = excluded.standing"
)


def _standing_out(standing: Standing) -> str:
    return orjson.dumps(
        {
            "lifecycle_stage": standing.lifecycle_stage,
            "value_tier": standing.value_tier,
            "ladder_step": standing.ladder_step,
            "rfm_segment": standing.rfm_segment,
        }
    ).decode()


class PostgresScoringStore:
    """The ScoringStore of score_batch.py, on one connection in a transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def lock_customers(self, customer_ids: Iterable[str]) -> None:
        """Transaction-scoped turns on customers, taken in one sorted order."""
        ids = sorted(set(customer_ids))
        if ids:
            await self._connection.execute(_LOCK_CUSTOMERS, {"ids": ids})

    async def save_profiles(self, snapshots: Sequence[ProfileSnapshot]) -> None:
        if snapshots:
            await self._connection.execute(
                _SAVE_PROFILES,
                {
                    "ids": [s.customer_id for s in snapshots],
                    "revisions": [s.revision for s in snapshots],
                    "snapshots": [s.model_dump_json() for s in snapshots],
                },
            )

    async def add_orders(self, orders: Sequence[tuple[str, LedgerOrder]]) -> None:
        if orders:
            await self._connection.execute(
                _ADD_ORDERS,
                {
                    "customer_ids": [customer_id for customer_id, _ in orders],
                    "order_ids": [o.order_id for _, o in orders],
                    "ats": [o.at for _, o in orders],
                    "revenues": [o.revenue for _, o in orders],
                    "currencies": [o.currency for _, o in orders],
                    # Each order's categories as a PostgreSQL array literal, one text per row.
                    "categories": [_array_literal(sorted(o.categories)) for _, o in orders],
                },
            )

    async def move_orders(self, moved: Mapping[str, str]) -> None:
        if moved:
            await self._connection.execute(
                _MOVE_ORDERS, {"absorbed": list(moved), "survivors": list(moved.values())}
            )

    async def forget(self, customer_ids: Iterable[str]) -> set[str]:
        """Delete the customers' rows; returns those that had published scores."""
        ids = sorted(set(customer_ids))
        if not ids:
            return set()
        for statement in _FORGET:
            await self._connection.execute(statement, {"ids": ids})
        return set(await self._connection.scalars(_FORGET_SCORES, {"ids": ids}))

    async def profiles(self, customer_ids: Iterable[str]) -> dict[str, ProfileSnapshot]:
        ids = sorted(set(customer_ids))
        rows = await self._connection.execute(_PROFILES, {"ids": ids})
        return {r.customer_id: ProfileSnapshot.model_validate_json(r.snapshot) for r in rows}

    async def orders(self, customer_ids: Iterable[str]) -> dict[str, list[LedgerOrder]]:
        ids = sorted(set(customer_ids))
        found: dict[str, list[LedgerOrder]] = {}
        for row in await self._connection.execute(_ORDERS, {"ids": ids}):
            found.setdefault(row.customer_id, []).append(
                LedgerOrder(
                    row.order_id,
                    row.ordered_at,
                    Decimal(row.revenue),
                    row.currency,
                    frozenset(row.categories or ()),
                )
            )
        return found

    async def lock_scores(self, customer_ids: Iterable[str]) -> dict[str, StoredScores]:
        ids = sorted(set(customer_ids))
        found = {}
        for row in await self._connection.execute(_LOCK_SCORES, {"ids": ids}):
            standing = orjson.loads(row.standing)
            found[row.customer_id] = StoredScores(
                row.revision, orjson.loads(row.record), Standing(**standing)
            )
        return found

    async def save_scores(self, scores: Sequence[tuple[str, int, str, Standing]]) -> None:
        """(customer id, revision, scores.v1 JSON, standing) per customer."""
        if scores:
            await self._connection.execute(
                _SAVE_SCORES,
                {
                    "ids": [customer_id for customer_id, _, _, _ in scores],
                    "revisions": [revision for _, revision, _, _ in scores],
                    "records": [record for _, _, record, _ in scores],
                    "standings": [_standing_out(standing) for _, _, _, standing in scores],
                },
            )


def _array_literal(values: Sequence[str]) -> str:
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"
