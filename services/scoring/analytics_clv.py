"""The dashboard's CLV page: its part of the daily snapshot and its route,
GET /v1/analytics/clv.

Each snapshot counts the customers with orders per CLV bucket and currency (today's levels, one
daily figure per bucket) and refreshes scoring.top_customers, the highest predicted and
historical CLV per currency; the page reads those rows and the latest model's fit (one row of
scoring.models), never every customer's scores.
"""

from datetime import date
from typing import Any

import orjson
from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.scoring.analytics_api import CurrencyCode, End, Start, load_snapshots, period_of
from services.scoring.analytics_store import DailyRows, SnapshotPart
from services.scoring.domain.analytics.clv import (
    CLV_EDGES,
    bucket_figure,
    bucket_label,
    clv_histograms,
    repeat_labels,
)

TOP_CUSTOMERS = 20  # per ranking and currency
RANKINGS = ("clv_predicted", "clv_historical")

# One pass over the scores of the customers with orders, each record parsed once (json is
# text: every -> would parse it again; OFFSET 0 keeps the planner from inlining the cast into
# every use), materialised for two uses:
# - the top customers per currency by each CLV, each a bounded top-N sort (ties to the smaller
#   customer id, so the list is the same from one snapshot to the next when nothing changed),
#   written to scoring.top_customers (emptied first);
# - customers per currency and bucket of each CLV, the answer: width_bucket numbers the buckets
#   from 1 (0 below the first edge, hence the clamp to 0).
_CLV_PASS = text(
    "WITH s AS MATERIALIZED ("
    "SELECT customer_id, currency, clv_historical, clv_predicted, ladder_step, value_tier, "
    "rfm_segment FROM snapshot_scores "
    "WHERE ladder_step <> 'prospect' AND currency IS NOT NULL), "
    "currencies AS (SELECT DISTINCT currency FROM s), "
    "ranked AS ("
    "SELECT 'clv_predicted' AS ranking, t.*, row_number() OVER ("
    "PARTITION BY t.currency ORDER BY t.clv_predicted DESC, t.customer_id) AS rank "
    "FROM currencies AS c CROSS JOIN LATERAL (SELECT * FROM s WHERE s.currency = c.currency "
    "ORDER BY clv_predicted DESC, customer_id LIMIT :top) AS t "
    "UNION ALL "
    "SELECT 'clv_historical', t.*, row_number() OVER ("
    "PARTITION BY t.currency ORDER BY t.clv_historical DESC, t.customer_id) "
    "FROM currencies AS c CROSS JOIN LATERAL (SELECT * FROM s WHERE s.currency = c.currency "
    "ORDER BY clv_historical DESC, customer_id LIMIT :top) AS t), "
    "top AS (INSERT INTO scoring.top_customers (ranking, currency, rank, customer_id, "
    "clv_historical, clv_predicted, orders, ladder_step, value_tier, rfm_segment) "
    "SELECT r.ranking, r.currency, r.rank, r.customer_id, r.clv_historical, r.clv_predicted, "
    "coalesce(CAST(p.snapshot->'commerce'->>'orders_count' AS int), 0), r.ladder_step, "
    "r.value_tier, r.rfm_segment "
    "FROM ranked AS r LEFT JOIN scoring.profiles AS p USING (customer_id)) "
    "SELECT currency, historical, predicted, count(*) AS customers FROM ("
    "SELECT currency, "
    "width_bucket(greatest(clv_historical, 0), CAST(:edges AS float[])) - 1 AS historical, "
    "width_bucket(greatest(clv_predicted, 0), CAST(:edges AS float[])) - 1 AS predicted "
    "FROM s) AS b GROUP BY GROUPING SETS ((currency, historical), (currency, predicted))"
)
_CLEAR_TOP = text("DELETE FROM scoring.top_customers")
# Customers erased since the snapshot have no scores left: they leave the list at once.
_TOP = text(
    "SELECT t.ranking, t.customer_id, t.clv_historical, t.clv_predicted, t.orders, "
    "t.ladder_step, t.value_tier, t.rfm_segment FROM scoring.top_customers AS t "
    "JOIN scoring.scores USING (customer_id) WHERE t.currency = :currency "
    "ORDER BY t.ranking, t.rank"
)
# The fit only: a model's co-purchases and catalogue can be large and are not shown.
_FIT = text(
    "SELECT version, fitted_at, as_of, model->>'status' AS status, model->>'reason' AS reason, "
    "CAST(model->>'customers' AS int) AS customers, "
    "CAST(model->>'repeat_customers' AS int) AS repeat_customers, "
    "CAST(model->'bgnbd' AS text) AS bgnbd, CAST(model->'gamma_gamma' AS text) AS gamma_gamma, "
    "CAST(model->'calibration' AS text) AS calibration "
    "FROM scoring.models ORDER BY version DESC LIMIT 1"
)


async def _write(connection: AsyncConnection, today: date, rows: DailyRows) -> None:
    await connection.execute(_CLEAR_TOP)
    found = await connection.execute(_CLV_PASS, {"edges": list(CLV_EDGES), "top": TOP_CUSTOMERS})
    for row in found:
        # Each row is one grouping set's: the other kind's bucket is null.
        kind, bucket = ("historical", row.historical)
        if row.historical is None:
            kind, bucket = ("predicted", row.predicted)
        rows.add(today, row.currency, bucket_figure(kind, bucket), float(row.customers))


CLV_SNAPSHOT = SnapshotPart(_write)


def _json(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


async def _model_fit(connection: AsyncConnection) -> dict[str, Any] | None:
    row = (await connection.execute(_FIT)).first()
    if row is None:
        return None
    calibration = _json(row.calibration)
    return {
        "version": row.version,
        "status": row.status,
        "reason": row.reason,
        "fitted_at": row.fitted_at.isoformat(),
        "as_of": row.as_of.isoformat(),
        "customers": row.customers,
        "repeat_customers": row.repeat_customers,
        "bgnbd": _json(row.bgnbd),
        "gamma_gamma": _json(row.gamma_gamma),
        "calibration": None
        if calibration is None
        else {"repeat_purchases": repeat_labels(len(calibration["actual"])), **calibration},
    }


async def _top_customers(connection: AsyncConnection, currency: str) -> dict[str, list[Any]]:
    top: dict[str, list[Any]] = {ranking: [] for ranking in RANKINGS}
    for row in await connection.execute(_TOP, {"currency": currency}):
        customer = row._asdict()
        top[customer.pop("ranking")].append(customer)
    return top


def routes(engine: AsyncEngine) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/clv",
        summary="The distribution of historical and predicted CLV (customers with orders per "
        "fixed bucket, from the range's last snapshot), the top customers by each, and the "
        "latest model's fit: parameters, status, customers fitted on and the calibration "
        "(customers per repeat purchases made, actual against what BG/NBD expects)",
    )
    async def clv_figures(
        start: Start = None, end: End = None, currency: CurrencyCode = None
    ) -> dict[str, Any]:
        period = period_of(start, end)
        found = await load_snapshots(engine, period.start, period.end, currency)
        histograms = clv_histograms(found.rows, period, found.currency or "")
        async with engine.connect() as connection:
            top = await _top_customers(connection, found.currency or "")
            model = await _model_fit(connection)
        return {
            **found.head(period),
            "day": histograms.day.isoformat() if histograms.day else None,
            "buckets": [
                {"lower": CLV_EDGES[b], "label": bucket_label(b)} for b in range(len(CLV_EDGES))
            ],
            "histograms": histograms.customers,
            "top": top,
            "model": model,
        }

    return router
