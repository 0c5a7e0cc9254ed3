"""The CLV and Channels pages' snapshot parts in PostgreSQL, read back through their routes:
the database buckets CLV as the pure core does, keeps the top customers (an erased one leaves at
once), serves the latest model's fit and calibration, and counts channel economics exactly as
GET /v1/channels does customer by customer; bad query parameters are refused by name."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.topics.profiles_v1 import Acquisition, Activity, Commerce, ProfileSnapshot
from services.scoring import analytics_channels, analytics_clv
from services.scoring.analytics_api import analytics_router
from services.scoring.analytics_store import snapshot
from services.scoring.api import economics_view
from services.scoring.domain.analytics.channels import ChannelBy, channel_lines, months_of
from services.scoring.domain.analytics.clv import CLV_EDGES, bucket_of
from services.scoring.domain.analytics.figures import DateRange
from services.scoring.domain.channels import Spend, acquired, channel_figures
from services.scoring.domain.clv import (
    BgNbdParams,
    Fit,
    GammaGammaParams,
    ModelStatus,
    repeat_calibration,
)
from services.scoring.domain.score import ScoringModel
from services.scoring.main import snapshot_parts
from services.scoring.store import PostgresScoringStore

pytestmark = pytest.mark.integration

TODAY = date(2026, 12, 2)
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
OCT, NOV, DEC = (datetime(2026, m, 5, 9, tzinfo=UTC) for m in (10, 11, 12))


async def _save(
    engine: AsyncEngine, customer_id: str, profile: dict[str, Any], record: dict[str, Any] | None
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO scoring.profiles (customer_id, revision, snapshot) "
                "VALUES (:id, 1, CAST(:snapshot AS json))"
            ),
            {"id": customer_id, "snapshot": orjson.dumps(profile).decode()},
        )
        if record is not None:
            await connection.execute(
                text(
                    "INSERT INTO scoring.scores (customer_id, revision, record, standing) "
                    "VALUES (:id, 1, CAST(:record AS json), '{}')"
                ),
                {"id": customer_id, "record": orjson.dumps(record).decode()},
            )


def _scores(customer_id: str, currency: str, historical: str, predicted: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "currency": currency,
        "clv_historical": historical,
        "clv_predicted": predicted,
        "ladder_step": "prospect" if customer_id.startswith("prospect") else "customer",
        "value_tier": "low_value",
        "rfm": {"recency": 3, "frequency": 2, "monetary": 1, "segment": "promising"},
    }


@pytest.fixture
async def analytics(scoring_db: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    pages = (analytics_clv.routes, analytics_channels.routes)
    app.include_router(analytics_router(scoring_db, lambda: None, pages))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://analytics") as client:
        yield client


async def _snapshot(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await snapshot(connection, snapshot_parts(timedelta(days=7)), TODAY, NOW)


CLV_VALUES = {  # customer: (currency, historical, predicted, orders)
    "c1": ("EUR", "10", "0", 1),  # on an edge: the bucket above
    "c2": ("EUR", "9.99", "150.5", 2),
    "c3": ("EUR", "-5", "100000", 7),  # refunded beyond its orders: the first bucket
    "c4": ("EUR", "150.5", "150.5", 3),
    "c5": ("USD", "500", "20", 4),
    "prospect-1": ("EUR", "0", "0", 0),  # no order: not counted
}


async def test_clv_buckets_top_customers_and_the_model_fit(
    scoring_db: AsyncEngine,
    analytics: httpx.AsyncClient,
) -> None:
    for customer_id, (currency, historical, predicted, orders) in CLV_VALUES.items():
        profile = {"commerce": {"orders_count": orders}}
        await _save(
            scoring_db, customer_id, profile, _scores(customer_id, currency, historical, predicted)
        )
    empty = (await analytics.get("/v1/analytics/clv")).json()
    assert (empty["day"], empty["currency"], empty["model"]) == (None, None, None)
    assert empty["top"] == {"clv_predicted": [], "clv_historical": []}

    await _snapshot(scoring_db)
    params = {"currency": "EUR", "start": "2026-11-20", "end": TODAY.isoformat()}
    answer = (await analytics.get("/v1/analytics/clv", params=params)).json()
    assert (answer["day"], answer["currency"], answer["currencies"]) == (
        TODAY.isoformat(), "EUR", ["EUR", "USD"],
    )  # fmt: skip
    assert [b["lower"] for b in answer["buckets"]] == list(CLV_EDGES)
    eur = {c: v for c, v in CLV_VALUES.items() if v[0] == "EUR" and not c.startswith("prospect")}
    for kind, index in (("historical", 1), ("predicted", 2)):
        expected = [0] * len(CLV_EDGES)
        for values in eur.values():
            expected[bucket_of(float(values[index]))] += 1
        assert answer["histograms"][kind] == expected, kind

    def ranked(ranking: str) -> list[tuple[str, float, int]]:
        return [(c["customer_id"], c[ranking], c["orders"]) for c in answer["top"][ranking]]

    # Ties go to the smaller customer id.
    assert ranked("clv_predicted") == [
        ("c3", 100000, 7), ("c2", 150.5, 2), ("c4", 150.5, 3), ("c1", 0, 1),
    ]  # fmt: skip
    assert ranked("clv_historical") == [
        ("c4", 150.5, 3),
        ("c1", 10, 1),
        ("c2", 9.99, 2),
        ("c3", -5, 7),
    ]
    top = answer["top"]["clv_predicted"][0]
    assert (top["ladder_step"], top["value_tier"], top["rfm_segment"]) == (
        "customer", "low_value", "promising",
    )  # fmt: skip

    # Erased since the snapshot: gone from the list at once.
    async with scoring_db.begin() as connection:
        await PostgresScoringStore(connection).forget_profiles(["c3"])
    answer = (await analytics.get("/v1/analytics/clv", params=params)).json()
    assert [c["customer_id"] for c in answer["top"]["clv_predicted"]] == ["c2", "c4", "c1"]

    # The latest model's fit and calibration, as the refit kept them.
    frequency, T = np.array([0.0, 0, 1, 3, 8]), np.array([30.0, 60, 60, 200, 400])
    bgnbd = BgNbdParams(0.25, 4.0, 0.8, 2.5)
    fit = Fit(ModelStatus.FITTED, bgnbd, GammaGammaParams(6.0, 4.0, 15.0), customers=5)
    model = ScoringModel(
        version=3, fit=fit, rfm_bounds=None, top_value_bound=Decimal(100),
        calibration=repeat_calibration(bgnbd, frequency, T),
    )  # fmt: skip
    async with scoring_db.begin() as connection:
        await PostgresScoringStore(connection).save_model(model, NOW, TODAY)
    fitted = (await analytics.get("/v1/analytics/clv", params=params)).json()["model"]
    assert (fitted["version"], fitted["status"], fitted["customers"]) == (3, "fitted", 5)
    assert fitted["bgnbd"] == {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    assert fitted["gamma_gamma"] == {"p": 6.0, "q": 4.0, "v": 15.0}
    assert fitted["fitted_at"] == NOW.isoformat()
    calibration = fitted["calibration"]
    assert calibration["repeat_purchases"] == ["0", "1", "2", "3", "4", "5", "6+"]
    assert calibration["actual"] == [2, 1, 0, 1, 0, 0, 1]
    assert calibration["expected"] == pytest.approx(
        list(repeat_calibration(bgnbd, frequency, T).expected or ())
    )


def _profile(
    customer_id: str,
    channel: str | None,
    campaign: str | None,
    touched: datetime | None,
    ordered: datetime | None,
    *,
    affiliate: str | None = None,
    seen: datetime = OCT,
) -> dict[str, Any]:
    return ProfileSnapshot(
        customer_id=customer_id,
        revision=1,
        updated_at=NOW,
        acquisition=Acquisition(
            first_touch_at=touched,
            channel=channel,
            campaign=campaign,
            affiliate=affiliate,
        ),
        activity=Activity(first_seen_at=seen),
        commerce=Commerce(currency="EUR" if ordered else None, first_order_at=ordered),
    ).model_dump(mode="json")


async def test_channel_figures_are_those_of_get_channels_and_add_up_per_channel(
    scoring_db: AsyncEngine,
    analytics: httpx.AsyncClient,
) -> None:
    customers = [
        ("a1", _profile("a1", "email", "spring", OCT, NOV), "120.5", "30"),
        ("a2", _profile("a2", "email", "spring", OCT, NOV), "80", "0"),
        ("a3", _profile("a3", "email", "autumn", NOV, DEC), "40", "10"),
        ("a4", _profile("a4", "email", "spring", NOV, None), None, None),  # touched, no order
        ("a5", _profile("a5", "affiliate", None, NOV, NOV, affiliate="blogger"), "55", "5"),
        ("a6", _profile("a6", None, None, None, DEC, seen=NOV), "20", "0"),  # direct, no touch
        ("a7", _profile("a7", "paid_search", "brand", DEC, DEC), None, None),  # not scored yet
    ]
    for customer_id, profile, historical, predicted in customers:
        record = (
            None
            if historical is None
            else _scores(customer_id, "EUR", historical, predicted or "0")
        )
        await _save(scoring_db, customer_id, profile, record)
    async with scoring_db.begin() as connection:
        store = PostgresScoringStore(connection)
        for spend in (
            Spend("email", None, "2026-11", Decimal("300"), "EUR"),
            Spend("email", "autumn", "2026-12", Decimal("25.5"), "EUR"),
            Spend("social", None, "2026-11", Decimal("70"), "EUR"),  # no customers: spend alone
        ):
            await store.save_spend(spend)
    await _snapshot(scoring_db)

    # The snapshot's rows are GET /v1/channels' rows, counted customer by customer.
    async with scoring_db.connect() as connection:
        store = PostgresScoringStore(connection)
        expected = channel_figures(
            [acquired(p, s) for p, s in await store.profiles_with_scores()], await store.spend()
        )
    period = DateRange(date(2026, 10, 20), TODAY)  # October, November, December
    by: ChannelBy
    for by in ("channel", "campaign", "affiliate"):
        params = {"start": "2026-10-20", "end": TODAY.isoformat(), "currency": "EUR", "by": by}
        answer = (await analytics.get("/v1/analytics/channels", params=params)).json()
        assert (answer["by"], answer["months"]) == (by, months_of(period))
        lines = channel_lines(expected, period, "EUR", by)
        assert [row["label"] for row in answer["rows"]] == [line.label for line in lines]
        for row, line in zip(answer["rows"], lines, strict=True):
            view = economics_view(line.total, lambda a: None if a is None else float(a))
            assert {k: row[k] for k in view} == view, (by, line.label)
            assert [m["new_customers"] for m in row["months"]] == [
                m.new_customers for m in line.by_month
            ]
    by_channel = (
        await analytics.get("/v1/analytics/channels", params={**params, "by": "channel"})
    ).json()
    email = next(row for row in by_channel["rows"] if row["label"] == "email")
    assert (email["profiles_touched"], email["converted"], email["new_customers"]) == (4, 3, 3)
    assert (email["spend"], email["cpa"]) == (325.5, 108.5)
    social = next(row for row in by_channel["rows"] if row["label"] == "social")
    assert (social["spend"], social["new_customers"], social["cpa"]) == (70.0, 0, None)
    direct = next(row for row in by_channel["rows"] if row["label"] == "direct")
    assert [m["profiles_touched"] for m in direct["months"]] == [0, 1, 0]  # first seen in Nov

    # One month only: December's new customers.
    december = {"start": "2026-12-01", "end": "2026-12-01", "currency": "EUR", "by": "channel"}
    answer = (await analytics.get("/v1/analytics/channels", params=december)).json()
    assert answer["months"] == ["2026-12"]
    assert {row["label"]: row["new_customers"] for row in answer["rows"]} == {
        "email": 1, "direct": 1, "paid_search": 1,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/v1/analytics/channels", {"by": "region"}, "by"),
        ("/v1/analytics/channels", {"currency": "eur"}, "currency"),
        ("/v1/analytics/channels", {"start": "2026-13-01"}, "start"),
        ("/v1/analytics/clv", {"currency": "EURO"}, "currency"),
        ("/v1/analytics/clv", {"end": "yesterday"}, "end"),
    ],
)
async def test_a_bad_query_parameter_is_refused_by_name(
    analytics: httpx.AsyncClient, path: str, params: dict[str, str], named: str
) -> None:
    answer = await analytics.get(path, params=params)
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["detail"]] == [["query", named]]


async def test_a_range_that_ends_before_it_starts_is_refused(analytics: httpx.AsyncClient) -> None:
    for path in ("/v1/analytics/channels", "/v1/analytics/clv"):
        answer = await analytics.get(path, params={"start": "2026-12-02", "end": "2026-12-01"})
        assert answer.status_code == 422
        assert [error["loc"] for error in answer.json()["detail"]] == [["query", "start"]]
