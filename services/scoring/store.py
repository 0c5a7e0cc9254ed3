"""Scoring's storage in the scoring schema: every statement the use case needs, by name.

Rows travel as arrays (unnest), so each statement has one fixed text whatever the batch size.
"""

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.topics.profiles_v1 import ProfileSnapshot
from services.scoring.domain.analytics.lifecycle import first_seen_on, furthest_step
from services.scoring.domain.channels import Spend
from services.scoring.domain.clv import (
    BgNbdParams,
    Fit,
    GammaGammaParams,
    ModelStatus,
    RepeatCalibration,
)
from services.scoring.domain.ledger import LedgerOrder, OrderLine
from services.scoring.domain.profile_view import ScoredProfile
from services.scoring.domain.recommend import CoPurchases
from services.scoring.domain.refit import SAMPLE_BUCKETS
from services.scoring.domain.rfm import RfmBounds
from services.scoring.domain.score import ScoringModel
from services.scoring.domain.transitions import Standing, Transition
from services.scoring.domain.upgrades import Catalogue, Listing, UpgradeRules
from services.scoring.score_batch import ProfileUpdate, StoredScores

_TRY_REFIT_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('retain:scoring:refit'))")
# A customer's sample bucket: a stable hash of their id, so a sample is uniform, the same
# customers from one refit to the next, and chosen by the database without reading the rest.
_ALL_ORDERS = text(
    "SELECT customer_id, order_id, ordered_at, revenue, currency, categories, products, "
    "CAST(lines AS text) AS lines "
    "FROM scoring.orders WHERE (hashtext(customer_id) & :mask) < :buckets "
    "ORDER BY customer_id, ordered_at, order_id"
)
_CUSTOMERS_WITH_ORDERS = text("SELECT count(DISTINCT customer_id) FROM scoring.orders")
_CUSTOMER_PAGE = text(
    "SELECT customer_id FROM scoring.profiles WHERE customer_id > :after "
    "ORDER BY customer_id LIMIT :limit"
)
_LATEST_MODEL = text(
    "SELECT version, fitted_at, as_of, CAST(model AS text) AS model FROM scoring.models "
    "ORDER BY version DESC LIMIT 1"
)
_LATEST_VERSION = text("SELECT coalesce(max(version), 0) FROM scoring.models")
_SAVE_MODEL = text(
    "INSERT INTO scoring.models (version, fitted_at, as_of, model) "
    "VALUES (:version, :fitted_at, :as_of, CAST(:model AS json))"
)
# Per dimension, segment and currency (money is never summed across currencies). The dimension
# names are constants of this module, never input.
SEGMENT_FIGURES = {
    dimension: text(
        f"SELECT {path} AS segment, record->>'currency' AS currency, count(*) AS customers, "  # noqa: S608
        "sum(CAST(record->>'clv_historical' AS numeric)) AS clv_historical, "
        "sum(CAST(record->>'clv_predicted' AS numeric)) AS clv_predicted "
        "FROM scoring.scores GROUP BY 1, 2 ORDER BY 1, 2"
    )
    for dimension, path in (
        ("value_tier", "record->>'value_tier'"),
        ("rfm_segment", "record->'rfm'->>'segment'"),
        ("ladder_step", "record->>'ladder_step'"),
        ("lifecycle_stage", "record->>'lifecycle_stage'"),
    )
}
_SAVE_SPEND = text(
    "INSERT INTO scoring.spend (channel, campaign, month, currency, amount) "
    "VALUES (:channel, :campaign, :month, :currency, :amount) "
    "ON CONFLICT (channel, campaign, month, currency) DO UPDATE "
    "SET amount = excluded.amount, updated_at = now()"
)
_ALL_SPEND = text(
    "SELECT channel, campaign, month, currency, amount FROM scoring.spend "
    "ORDER BY month, channel, campaign, currency"
)
_ACQUIRED = text(
    "SELECT CAST(p.snapshot AS text) AS snapshot, CAST(s.record AS text) AS record "
    "FROM scoring.profiles AS p LEFT JOIN scoring.scores AS s USING (customer_id)"
)
_SCORES_OF = text("SELECT CAST(record AS text) FROM scoring.scores WHERE customer_id = :id")
_LOCK_CUSTOMERS = text(
    "SELECT pg_advisory_xact_lock(hashtext('retain:scoring:' || c)) "
    "FROM unnest(CAST(:ids AS text[])) AS c ORDER BY c"
)
# With each snapshot, the customer's funnel cohort and furthest step (the dashboard counts them).
_SAVE_PROFILES = text(
    "INSERT INTO scoring.profiles AS p "
    "(customer_id, revision, snapshot, first_seen_on, funnel_step) "
    "SELECT c, r, CAST(s AS json), d, f FROM unnest("
    "CAST(:ids AS text[]), CAST(:revisions AS bigint[]), CAST(:snapshots AS text[]), "
    "CAST(:first_seen AS date[]), CAST(:steps AS smallint[])"
    ") AS u(c, r, s, d, f) "
    "ON CONFLICT (customer_id) DO UPDATE SET revision = excluded.revision, "
    "snapshot = excluded.snapshot, first_seen_on = excluded.first_seen_on, "
    "funnel_step = excluded.funnel_step WHERE p.revision < excluded.revision "
    "RETURNING customer_id"
)
_ADD_ORDERS = text(
    "INSERT INTO scoring.orders "
    "(customer_id, order_id, ordered_at, revenue, currency, categories, products, lines) "
    "SELECT c, o, a, r, cur, CAST(cats AS text[]), CAST(prods AS text[]), CAST(ls AS json) "
    "FROM unnest("
    "CAST(:customer_ids AS text[]), CAST(:order_ids AS text[]), CAST(:ats AS timestamptz[]), "
    "CAST(:revenues AS numeric[]), CAST(:currencies AS text[]), CAST(:categories AS text[]), "
    "CAST(:products AS text[]), CAST(:lines AS text[])"
    ") AS u(c, o, a, r, cur, cats, prods, ls) ON CONFLICT (customer_id, order_id) DO NOTHING"
)
_MOVE_ORDERS = (
    text(
        "INSERT INTO scoring.orders "
        "(customer_id, order_id, ordered_at, revenue, currency, categories, products, lines) "
        "SELECT m.survivor, o.order_id, o.ordered_at, o.revenue, o.currency, o.categories, "
        "o.products, o.lines "
        "FROM scoring.orders AS o JOIN unnest(CAST(:absorbed AS text[]), "
        "CAST(:survivors AS text[])) AS m(absorbed, survivor) ON o.customer_id = m.absorbed "
        "ON CONFLICT (customer_id, order_id) DO NOTHING"
    ),
    text("DELETE FROM scoring.orders WHERE customer_id = ANY(CAST(:absorbed AS text[]))"),
)
_FORGET_ORDERS = text(
    "DELETE FROM scoring.orders AS o USING unnest("
    "CAST(:customer_ids AS text[]), CAST(:order_ids AS text[])) AS f(c, oid) "
    "WHERE o.customer_id = f.c AND o.order_id = f.oid"
)
_MOVE_CLICKS = text(
    "UPDATE scoring.email_clicks AS c SET customer_id = m.survivor "
    "FROM unnest(CAST(:absorbed AS text[]), CAST(:survivors AS text[])) AS m(absorbed, survivor) "
    "WHERE c.customer_id = m.absorbed"
)
_FORGET_CLICKS = text(
    "DELETE FROM scoring.email_clicks AS c USING unnest("
    "CAST(:customer_ids AS text[]), CAST(:ats AS timestamptz[])) AS e(customer_id, erased_at) "
    "WHERE c.customer_id = e.customer_id AND c.clicked_at <= e.erased_at"
)
_FORGET_PROFILES = text(
    "DELETE FROM scoring.profiles WHERE customer_id = ANY(CAST(:ids AS text[]))"
)
_ERASURES = text(
    "SELECT customer_hash, erased_at FROM scoring.erasures "
    "WHERE customer_hash = ANY(CAST(:hashes AS text[]))"
)
_RECORD_ERASURES = text(
    "INSERT INTO scoring.erasures (customer_hash, erased_at) "
    "SELECT h, a FROM unnest(CAST(:hashes AS text[]), CAST(:ats AS timestamptz[])) AS u(h, a) "
    "ON CONFLICT (customer_hash) DO UPDATE SET erased_at = excluded.erased_at"
)
_FORGET_SCORES = text(
    "DELETE FROM scoring.scores WHERE customer_id = ANY(CAST(:ids AS text[])) RETURNING customer_id"
)
_PROFILES = text(
    "SELECT customer_id, CAST(snapshot AS text) AS snapshot FROM scoring.profiles "
    "WHERE customer_id = ANY(CAST(:ids AS text[]))"
)
_ORDERS = text(
    "SELECT customer_id, order_id, ordered_at, revenue, currency, categories, products, "
    "CAST(lines AS text) AS lines "
    "FROM scoring.orders "
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

_RECORD_TRANSITIONS = text(
    "INSERT INTO scoring.transitions "
    "(event_id, customer_id, dimension, from_segment, to_segment, at, day) "
    "SELECT * FROM unnest(CAST(:event_ids AS text[]), CAST(:customer_ids AS text[]), "
    "CAST(:dimensions AS text[]), CAST(:froms AS text[]), CAST(:tos AS text[]), "
    "CAST(:ats AS timestamptz[]), CAST(:days AS date[])) ON CONFLICT (event_id) DO NOTHING"
)
_MOVE_TRANSITIONS = text(
    "UPDATE scoring.transitions AS t SET customer_id = m.survivor "
    "FROM unnest(CAST(:absorbed AS text[]), CAST(:survivors AS text[])) AS m(absorbed, survivor) "
    "WHERE t.customer_id = m.absorbed"
)
_FORGET_TRANSITIONS_UNTIL = text(
    "DELETE FROM scoring.transitions AS t "
    "USING unnest(CAST(:ids AS text[]), CAST(:untils AS timestamptz[])) AS f(c, until) "
    "WHERE t.customer_id = f.c AND t.at <= f.until"
)
_FORGET_TRANSITIONS = text(
    "DELETE FROM scoring.transitions WHERE customer_id = ANY(CAST(:ids AS text[]))"
)
_TRANSITIONS_OF = text(
    "SELECT event_id, customer_id, dimension, from_segment, to_segment, at "
    "FROM scoring.transitions WHERE customer_id = :id ORDER BY at, event_id"
)


def _standing_out(standing: Standing) -> str:
    return orjson.dumps(
        {
            "lifecycle_stage": standing.lifecycle_stage,
            "value_tier": standing.value_tier,
            "ladder_step": standing.ladder_step,
            "rfm_segment": standing.rfm_segment,
            "churn_band": standing.churn_band,
        }
    ).decode()


@dataclass(frozen=True)
class StoredModel:
    fitted_at: datetime
    as_of: date
    model: ScoringModel


class PostgresScoringStore:
    """The ScoringStore of score_batch.py, on one connection in a transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def try_refit_lock(self) -> bool:
        """One refit at a time across replicas: the lock lasts as long as the transaction."""
        return bool(await self._connection.scalar(_TRY_REFIT_LOCK))

    async def customers_with_orders(self) -> int:
        return int(await self._connection.scalar(_CUSTOMERS_WITH_ORDERS) or 0)

    async def ledger(self, buckets: int = SAMPLE_BUCKETS) -> dict[str, list[LedgerOrder]]:
        """The orders, oldest first, of the customers in the first `buckets` sample buckets
        (all of them by default)."""
        found: dict[str, list[LedgerOrder]] = {}
        sample = {"mask": SAMPLE_BUCKETS - 1, "buckets": buckets}
        for row in await self._connection.execute(_ALL_ORDERS, sample):
            found.setdefault(row.customer_id, []).append(_order(row))
        return found

    async def customer_page(self, after: str, limit: int) -> list[str]:
        return list(
            await self._connection.scalars(_CUSTOMER_PAGE, {"after": after, "limit": limit})
        )

    async def latest_model_version(self) -> int:
        return int(await self._connection.scalar(_LATEST_VERSION) or 0)

    async def latest_stored_model(self) -> StoredModel | None:
        row = (await self._connection.execute(_LATEST_MODEL)).first()
        if row is None:
            return None
        return StoredModel(row.fitted_at, row.as_of, model_from_json(orjson.loads(row.model)))

    async def latest_model(self) -> ScoringModel | None:
        stored = await self.latest_stored_model()
        return None if stored is None else stored.model

    async def save_model(self, model: ScoringModel, fitted_at: datetime, as_of: date) -> None:
        await self._connection.execute(
            _SAVE_MODEL,
            {
                "version": model.version,
                "fitted_at": fitted_at,
                "as_of": as_of,
                "model": orjson.dumps(model_to_json(model)).decode(),
            },
        )

    async def segment_figures(self) -> dict[str, list[dict[str, Any]]]:
        """Customers and their value per segment of each dimension, per currency."""
        figures: dict[str, list[dict[str, Any]]] = {}
        for dimension, statement in SEGMENT_FIGURES.items():
            figures[dimension] = [
                {
                    "segment": row.segment,
                    "currency": row.currency,
                    "customers": int(row.customers),
                    "clv_historical": str(row.clv_historical or 0),
                    "clv_predicted": str(row.clv_predicted or 0),
                }
                for row in await self._connection.execute(statement)
            ]
        return figures

    async def save_spend(self, spend: Spend) -> None:
        """Set (not add to) the spend of a channel or campaign in a month: idempotent."""
        await self._connection.execute(
            _SAVE_SPEND,
            {
                "channel": spend.channel,
                "campaign": spend.campaign or "",
                "month": spend.month,
                "currency": spend.currency,
                "amount": spend.amount,
            },
        )

    async def spend(self) -> list[Spend]:
        return [
            Spend(r.channel, r.campaign or None, r.month, Decimal(r.amount), r.currency)
            for r in await self._connection.execute(_ALL_SPEND)
        ]

    async def profiles_with_scores(self) -> list[tuple[ProfileSnapshot, dict[str, Any]]]:
        """Every customer's profile and latest scores record ({} before the first scoring)."""
        return [
            (
                ProfileSnapshot.model_validate_json(row.snapshot),
                orjson.loads(row.record) if row.record else {},
            )
            for row in await self._connection.execute(_ACQUIRED)
        ]

    async def scores_of(self, customer_id: str) -> dict[str, Any] | None:
        record = await self._connection.scalar(_SCORES_OF, {"id": customer_id})
        return None if record is None else dict(orjson.loads(record))

    async def lock_customers(self, customer_ids: Iterable[str]) -> None:
        """Transaction-scoped turns on customers, taken in one sorted order."""
        ids = sorted(set(customer_ids))
        if ids:
            await self._connection.execute(_LOCK_CUSTOMERS, {"ids": ids})

    async def save_profiles(self, updates: Sequence[ProfileUpdate]) -> set[str]:
        """Keep each snapshot unless a higher revision is stored (the record's own JSON);
        returns the customers whose snapshot was stored."""
        kept = [(u, u.snapshot) for u in updates if u.snapshot is not None]
        if not kept:
            return set()
        return set(
            await self._connection.scalars(
                _SAVE_PROFILES,
                {
                    "ids": [u.customer_id for u, _ in kept],
                    "revisions": [snapshot.revision for _, snapshot in kept],
                    "snapshots": [
                        u.raw.decode() if u.raw else snapshot.model_dump_json()
                        for u, snapshot in kept
                    ],
                    "first_seen": [first_seen_on(snapshot) for _, snapshot in kept],
                    "steps": [furthest_step(snapshot) for _, snapshot in kept],
                },
            )
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
                    "products": [_array_literal(sorted(o.products)) for _, o in orders],
                    "lines": [_lines_out(o.lines) for _, o in orders],
                },
            )

    async def move_orders(self, moved: Mapping[str, str]) -> None:
        if moved:
            for statement in _MOVE_ORDERS:
                await self._connection.execute(
                    statement, {"absorbed": list(moved), "survivors": list(moved.values())}
                )

    async def forget_orders(self, orders: Sequence[tuple[str, str]]) -> None:
        if orders:
            await self._connection.execute(
                _FORGET_ORDERS,
                {
                    "customer_ids": [customer_id for customer_id, _ in orders],
                    "order_ids": [order_id for _, order_id in orders],
                },
            )

    async def move_clicks(self, moved: Mapping[str, str]) -> None:
        if moved:
            await self._connection.execute(
                _MOVE_CLICKS, {"absorbed": list(moved), "survivors": list(moved.values())}
            )

    async def forget_clicks(self, erased_at: Mapping[str, datetime]) -> None:
        if erased_at:
            await self._connection.execute(
                _FORGET_CLICKS,
                {"customer_ids": list(erased_at), "ats": list(erased_at.values())},
            )

    async def forget_profiles(self, customer_ids: Iterable[str]) -> set[str]:
        """Delete the customers' profiles, scores and transitions; returns those that had
        published scores."""
        ids = sorted(set(customer_ids))
        if not ids:
            return set()
        await self._connection.execute(_FORGET_PROFILES, {"ids": ids})
        await self._connection.execute(_FORGET_TRANSITIONS, {"ids": ids})
        return set(await self._connection.scalars(_FORGET_SCORES, {"ids": ids}))

    async def erasures(self, customer_ids: Iterable[str]) -> dict[str, datetime]:
        hashes = {_erasure_hash(customer_id): customer_id for customer_id in customer_ids}
        if not hashes:
            return {}
        rows = await self._connection.execute(_ERASURES, {"hashes": list(hashes)})
        return {hashes[row.customer_hash]: row.erased_at for row in rows}

    async def record_erasures(self, erased_at: Mapping[str, datetime]) -> None:
        if erased_at:
            await self._connection.execute(
                _RECORD_ERASURES,
                {
                    "hashes": [_erasure_hash(customer_id) for customer_id in erased_at],
                    "ats": list(erased_at.values()),
                },
            )

    async def profiles(self, customer_ids: Iterable[str]) -> dict[str, ScoredProfile]:
        ids = sorted(set(customer_ids))
        rows = await self._connection.execute(_PROFILES, {"ids": ids})
        return {r.customer_id: ScoredProfile.model_validate_json(r.snapshot) for r in rows}

    async def orders(self, customer_ids: Iterable[str]) -> dict[str, list[LedgerOrder]]:
        ids = sorted(set(customer_ids))
        found: dict[str, list[LedgerOrder]] = {}
        for row in await self._connection.execute(_ORDERS, {"ids": ids}):
            found.setdefault(row.customer_id, []).append(_order(row))
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

    async def record_transitions(self, changes: Sequence[Transition]) -> None:
        if changes:
            await self._connection.execute(
                _RECORD_TRANSITIONS,
                {
                    "event_ids": [t.event_id for t in changes],
                    "customer_ids": [t.customer_id for t in changes],
                    "dimensions": [t.dimension for t in changes],
                    "froms": [t.from_segment for t in changes],
                    "tos": [t.to_segment for t in changes],
                    "ats": [t.at for t in changes],
                    "days": [t.day for t in changes],
                },
            )

    async def move_transitions(self, moved: Mapping[str, str]) -> None:
        if moved:
            await self._connection.execute(
                _MOVE_TRANSITIONS,
                {"absorbed": list(moved), "survivors": list(moved.values())},
            )

    async def forget_transitions(self, until: Mapping[str, datetime]) -> None:
        if until:
            await self._connection.execute(
                _FORGET_TRANSITIONS_UNTIL, {"ids": list(until), "untils": list(until.values())}
            )

    async def transitions_of(self, customer_id: str) -> list[Transition]:
        """The customer's kept transitions, oldest first."""
        rows = await self._connection.execute(_TRANSITIONS_OF, {"id": customer_id})
        return [
            Transition(r.event_id, r.customer_id, r.dimension, r.from_segment, r.to_segment, r.at)
            for r in rows
        ]


def _erasure_hash(customer_id: str) -> str:
    """What the erasure ledger keeps instead of the customer id (as profile.erasures does)."""
    return hashlib.sha256(f"erased:{customer_id}".encode()).hexdigest()


def _array_literal(values: Sequence[str]) -> str:
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def _lines_out(lines: Sequence[OrderLine]) -> str:
    return orjson.dumps(
        [
            {
                "product_id": line.product_id,
                "category": line.category,
                "unit_price": None if line.unit_price is None else str(line.unit_price),
            }
            for line in lines
        ]
    ).decode()


def _order(row: Any) -> LedgerOrder:
    lines = tuple(
        OrderLine(
            line["product_id"],
            line["category"],
            None if line["unit_price"] is None else Decimal(line["unit_price"]),
        )
        for line in orjson.loads(row.lines)
    )
    return LedgerOrder(
        row.order_id,
        row.ordered_at,
        Decimal(row.revenue),
        row.currency,
        frozenset(row.categories or ()),
        frozenset(row.products or ()),
        lines,
    )


def model_to_json(model: ScoringModel) -> dict[str, Any]:
    fit = model.fit
    return {
        "version": model.version,
        "status": fit.status.value,
        "reason": fit.reason,
        "customers": fit.customers,
        "repeat_customers": fit.repeat_customers,
        "bgnbd": None if fit.bgnbd is None else asdict(fit.bgnbd),
        "gamma_gamma": None if fit.gamma_gamma is None else asdict(fit.gamma_gamma),
        "bgnbd_log_likelihood": fit.bgnbd_log_likelihood,
        "gamma_gamma_log_likelihood": fit.gamma_gamma_log_likelihood,
        "rfm_bounds": None if model.rfm_bounds is None else asdict(model.rfm_bounds),
        "top_value_bound": str(model.top_value_bound),
        "horizon_months": model.horizon_months,
        "monthly_discount_rate": model.monthly_discount_rate,
        "co_purchases": {
            "neighbours": model.co_purchases.neighbours,
            "popularity": model.co_purchases.popularity,
            "popular": list(model.co_purchases.popular),
        },
        "catalogue": {
            product: {
                "category": listing.category,
                "prices": {currency: str(price) for currency, price in listing.prices.items()},
                "buyers": listing.buyers,
            }
            for product, listing in model.catalogue.listings.items()
        },
        "upgrade_rules": {
            "price_ratio": str(model.upgrade_rules.price_ratio),
            "count": model.upgrade_rules.count,
        },
        "calibration": None if model.calibration is None else asdict(model.calibration),
    }


def model_from_json(data: dict[str, Any]) -> ScoringModel:
    bounds = data["rfm_bounds"]
    return ScoringModel(
        version=data["version"],
        fit=Fit(
            ModelStatus(data["status"]),
            bgnbd=None if data["bgnbd"] is None else BgNbdParams(**data["bgnbd"]),
            gamma_gamma=(
                None if data["gamma_gamma"] is None else GammaGammaParams(**data["gamma_gamma"])
            ),
            reason=data["reason"],
            customers=data["customers"],
            repeat_customers=data["repeat_customers"],
            bgnbd_log_likelihood=data["bgnbd_log_likelihood"],
            gamma_gamma_log_likelihood=data["gamma_gamma_log_likelihood"],
        ),
        rfm_bounds=None
        if bounds is None
        else RfmBounds(
            tuple(bounds["recency_days"]), tuple(bounds["frequency"]), tuple(bounds["monetary"])
        ),
        top_value_bound=Decimal(data["top_value_bound"]),
        horizon_months=data["horizon_months"],
        monthly_discount_rate=data["monthly_discount_rate"],
        co_purchases=CoPurchases(co["neighbours"], co["popularity"], tuple(co["popular"]))
        if (co := data.get("co_purchases"))
        else CoPurchases(),
        # Models fitted before upgrades have no catalogue (no upgrades) and the default rules.
        catalogue=Catalogue(
            {
                product: Listing(
                    listing["category"],
                    {currency: Decimal(price) for currency, price in listing["prices"].items()},
                    listing["buyers"],
                )
                for product, listing in data.get("catalogue", {}).items()
            }
        ),
        upgrade_rules=UpgradeRules(Decimal(rules["price_ratio"]), rules["count"])
        if (rules := data.get("upgrade_rules"))
        else UpgradeRules(),
        # Models fitted before the calibration was kept have none.
        calibration=RepeatCalibration(
            tuple(found["actual"]),
            None if found["expected"] is None else tuple(found["expected"]),
        )
        if (found := data.get("calibration"))
        else None,
    )
