"""The Email page's facts in PostgreSQL: the consumer of notifications.v1 that counts them
(scoring.email_daily, email_counted) and keeps the clicks (scoring.email_clicks), and the
snapshot part that attributes orders to the clicks (services/scoring/domain/analytics/email.py
says how each is counted)."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta

from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.topics.notifications_v1 import (
    NotificationClicked,
    NotificationEvent,
    NotificationSuppressed,
)
from services.runtime.consumer import Record
from services.runtime.messages import OutboxMessage
from services.scoring.analytics_store import DailyRows, SnapshotPart
from services.scoring.domain.analytics.email import (
    ATTRIBUTED,
    DAILY_SERIES,
    Click,
    CountKey,
    DayCount,
    EmailFact,
    Order,
    RangeTotal,
    attribute,
    attributed_figure,
    daily_counts,
)
from services.scoring.domain.erasure import before_erasure
from services.scoring.store import PostgresScoringStore

_NOTIFICATION = TypeAdapter[NotificationEvent](NotificationEvent)

# The (email, type) pairs counted for the first time by this statement.
_FIRST_SEEN = text(
    "INSERT INTO scoring.email_counted (notification_id, type) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:types AS text[])) "
    "ON CONFLICT DO NOTHING RETURNING notification_id, type"
)
_ADD_COUNTS = text(
    "INSERT INTO scoring.email_daily AS d (day, journey, template, type, reason, count) "
    "SELECT * FROM unnest(CAST(:days AS date[]), CAST(:journeys AS text[]), "
    "CAST(:templates AS text[]), CAST(:types AS text[]), CAST(:reasons AS text[]), "
    "CAST(:counts AS bigint[])) ON CONFLICT (day, journey, template, type, reason) "
    "DO UPDATE SET count = d.count + excluded.count"
)
_ADD_CLICKS = text(
    "INSERT INTO scoring.email_clicks "
    "(event_id, customer_id, notification_id, journey, template, clicked_at) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:customers AS text[]), "
    "CAST(:notifications AS text[]), CAST(:journeys AS text[]), CAST(:templates AS text[]), "
    "CAST(:ats AS timestamptz[])) ON CONFLICT (event_id) DO NOTHING"
)
_RANGE_TOTALS = text(
    "SELECT journey, template, type, reason, sum(count) AS n FROM scoring.email_daily "
    "WHERE day BETWEEN :start AND :end GROUP BY journey, template, type, reason"
)
_CHARTED_DAILY = text(
    "SELECT day, journey, template, type, sum(count) AS n FROM scoring.email_daily "
    "WHERE day BETWEEN :start AND :end AND type = ANY(CAST(:types AS text[])) "
    "GROUP BY day, journey, template, type"
)
# Each order of a customer who clicked, with every click of theirs in the window before it:
# the candidates the pure core picks the last click from. Driven by the clicks (few) and the
# orders' (customer_id, order_id) key, so it never reads the orders of customers who never
# clicked.
_ORDERS_AFTER_CLICKS = text(
    "SELECT o.customer_id, o.order_id, o.ordered_at, o.currency, o.revenue::float AS revenue, "
    "c.clicked_at, c.journey, c.template "
    "FROM (SELECT DISTINCT customer_id FROM scoring.email_clicks) AS k "
    "JOIN scoring.orders AS o ON o.customer_id = k.customer_id "
    "JOIN scoring.email_clicks AS c ON c.customer_id = o.customer_id "
    "AND c.clicked_at <= o.ordered_at AND c.clicked_at >= o.ordered_at - CAST(:window AS interval) "
    "WHERE o.currency IS NOT NULL"
)


class PostgresEmailStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def first_seen(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Record these (email, type) pairs; those not recorded before."""
        unique = sorted(set(keys))
        if not unique:
            return set()
        result = await self._connection.execute(
            _FIRST_SEEN, {"ids": [k[0] for k in unique], "types": [k[1] for k in unique]}
        )
        return {(r.notification_id, r.type) for r in result}

    async def add_counts(self, counts: Mapping[CountKey, int]) -> None:
        rows = sorted(counts.items())  # rows locked in one order
        if rows:
            await self._connection.execute(
                _ADD_COUNTS,
                {
                    "days": [k[0] for k, _ in rows],
                    "journeys": [k[1] for k, _ in rows],
                    "templates": [k[2] for k, _ in rows],
                    "types": [k[3] for k, _ in rows],
                    "reasons": [k[4] for k, _ in rows],
                    "counts": [n for _, n in rows],
                },
            )

    async def add_clicks(self, clicks: Sequence[NotificationClicked]) -> None:
        if clicks:
            await self._connection.execute(
                _ADD_CLICKS,
                {
                    "ids": [c.event_id for c in clicks],
                    "customers": [c.customer_id for c in clicks],
                    "notifications": [c.notification_id for c in clicks],
                    "journeys": [c.journey or "" for c in clicks],
                    "templates": [c.template for c in clicks],
                    "ats": [c.occurred_at for c in clicks],
                },
            )

    async def range_totals(self, start: date, end: date) -> list[RangeTotal]:
        """Each counter's total over the range, per journey, template, type and reason."""
        result = await self._connection.execute(_RANGE_TOTALS, {"start": start, "end": end})
        return [(r.journey, r.template, r.type, r.reason, float(r.n)) for r in result]

    async def charted_daily(self, start: date, end: date) -> list[DayCount]:
        """Each day's count of the charted types, per journey and template."""
        result = await self._connection.execute(
            _CHARTED_DAILY, {"start": start, "end": end, "types": list(DAILY_SERIES)}
        )
        return [(r.day, r.journey, r.template, r.type, float(r.n)) for r in result]


def decode_notification(record: Record) -> NotificationEvent:
    return _NOTIFICATION.validate_json(record.value or b"")


def email_fact(event: NotificationEvent) -> EmailFact:
    reason = event.reason if isinstance(event, NotificationSuppressed) else ""
    return EmailFact(
        event.notification_id,
        event.type,
        event.occurred_at,
        event.journey or "",
        event.template,
        reason,
    )


async def count_emails(
    connection: AsyncConnection, events: Sequence[NotificationEvent]
) -> Sequence[OutboxMessage]:
    """The notifications.v1 consumer's use case: count each fact once, keep the clicks (not
    those of a customer erased since: they are the erased customer's)."""
    store, scoring = PostgresEmailStore(connection), PostgresScoringStore(connection)
    clicks = [e for e in events if isinstance(e, NotificationClicked)]
    clickers = {c.customer_id for c in clicks}
    await scoring.lock_customers(clickers)  # in turn with their erasure and merges
    erased_at = await scoring.erasures(clickers)
    await store.add_clicks(
        [c for c in clicks if not before_erasure(c.occurred_at, erased_at.get(c.customer_id))]
    )
    facts = [email_fact(e) for e in events]
    first = await store.first_seen(f.once for f in facts)
    await store.add_counts(daily_counts(facts, first))
    return []


def email_snapshot(window: timedelta) -> SnapshotPart:
    """Orders and revenue each journey's template brought, per day and currency, recomputed
    from the whole ledger each time (orders of erased customers leave it, late ones arrive)."""

    async def write(connection: AsyncConnection, today: date, rows: DailyRows) -> None:
        orders: dict[tuple[str, str], Order] = {}
        clicks: set[Click] = set()
        for r in await connection.execute(_ORDERS_AFTER_CLICKS, {"window": window}):
            orders[(r.customer_id, r.order_id)] = Order(
                r.customer_id, r.order_id, r.ordered_at, r.currency, r.revenue
            )
            clicks.add(Click(r.customer_id, r.clicked_at, r.journey, r.template))
        attributed = attribute(orders.values(), clicks, window)
        for (day, currency, journey, template), (count, revenue) in attributed.items():
            rows.add(day, currency, attributed_figure("orders", journey, template), float(count))
            rows.add(day, currency, attributed_figure("revenue", journey, template), revenue)

    return SnapshotPart(write, history=tuple(attributed_figure(m, "%", "%") for m in ATTRIBUTED))
