"""The scoring admin API (admin token only): a customer's scores, the model, refits."""

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas._types import EARLIEST, MAX_MONEY, Currency, Money
from services.runtime.params import NulFree, invalid_parameter
from services.scoring.domain.channels import (
    SPEND_DECIMAL_PLACES,
    ChannelFigures,
    Spend,
    acquired,
    channel_figures,
)
from services.scoring.refit_job import RefitBusyError, RefitJob
from services.scoring.store import PostgresScoringStore, StoredModel, model_to_json

CustomerId = Annotated[str, Path(max_length=64), NulFree]
Channel = Literal[
    "direct", "search", "paid_search", "social", "email", "referral", "affiliate", "other"
]


class SpendIn(BaseModel):
    """Marketing spend of a channel (or one of its campaigns) in a month."""

    model_config = ConfigDict(extra="forbid")

    amount: Annotated[Money, Field(ge=0, le=MAX_MONEY, decimal_places=SPEND_DECIMAL_PLACES)]
    currency: Currency
    campaign: Annotated[str | None, Field(max_length=256), NulFree] = Field(
        default=None, description="Absent: the whole channel's spend."
    )


Month = Annotated[str, Path(pattern=r"^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])$", examples=["2026-01"])]


class ErrorMessage(BaseModel):
    detail: str


def _model_view(stored: StoredModel | None, current: dict[str, Any]) -> dict[str, Any]:
    if stored is None:
        return {**current, "fitted_at": None, "as_of": None}
    return {
        **model_to_json(stored.model),
        "fitted_at": stored.fitted_at.isoformat(),
        "as_of": stored.as_of.isoformat(),
    }


def _money(amount: Decimal | None) -> str | None:
    return None if amount is None else format(amount, "f")


def economics_view(row: ChannelFigures, money: Callable[[Decimal | None], Any]) -> dict[str, Any]:
    """A row's counts and economics, its amounts as `money` writes them (here strings; the
    dashboard's analytics, numbers to chart)."""
    return {
        "profiles_touched": row.touched,
        "converted": row.converted,
        "conversion_rate": row.conversion_rate,
        "new_customers": row.new_customers,
        "spend": money(row.spend),
        "cpa": money(row.cpa),
        "average_clv_historical": money(row.average_clv_historical),
        "average_clv_predicted": money(row.average_clv_predicted),
        "clv_to_cpa": row.clv_to_cpa,
    }


def _channel_view(row: ChannelFigures) -> dict[str, Any]:
    return {
        "channel": row.channel,
        "campaign": row.campaign,
        "affiliate": row.affiliate,
        "month": row.month,
        "currency": row.currency,
        **economics_view(row, _money),
    }


def scoring_router(engine: AsyncEngine, refits: RefitJob, admin: Any) -> APIRouter:
    router = APIRouter(
        prefix="/v1",
        dependencies=[Depends(admin)],
        responses={401: {"model": ErrorMessage, "description": "Admin token missing or invalid"}},
    )

    @router.get(
        "/scores/{customer_id}",
        tags=["scores"],
        summary="A customer's latest scores (the scores.v1 record)",
        responses={404: {"model": ErrorMessage, "description": "No scores for this customer"}},
    )
    async def scores(customer_id: CustomerId) -> dict[str, Any]:
        async with engine.connect() as connection:
            record = await PostgresScoringStore(connection).scores_of(customer_id)
        if record is None:
            raise HTTPException(404, f"no scores for {customer_id}")
        return record

    @router.get(
        "/segments",
        tags=["scores"],
        summary="Customers, historical and predicted value per value tier, RFM segment, "
        "ladder step and lifecycle stage (per currency; a null segment: no RFM yet)",
    )
    async def segments() -> dict[str, Any]:
        async with engine.connect() as connection:
            return await PostgresScoringStore(connection).segment_figures()

    @router.put(
        "/spend/{channel}/{month}",
        tags=["channels"],
        summary="Set a channel's (or campaign's) marketing spend in a month (idempotent)",
    )
    async def put_spend(channel: Channel, month: Month, spend: SpendIn) -> dict[str, Any]:
        recorded = Spend(channel, spend.campaign, month, spend.amount, spend.currency)
        async with engine.begin() as connection:
            await PostgresScoringStore(connection).save_spend(recorded)
        return {
            "channel": channel,
            "campaign": spend.campaign,
            "month": month,
            "amount": str(spend.amount),
            "currency": spend.currency,
        }

    @router.get(
        "/channels",
        tags=["channels"],
        summary="Per channel, campaign, affiliate, month and currency: profiles touched, "
        "conversion, new customers, spend, CPA, average CLV and CLV:CPA",
    )
    async def channels() -> dict[str, Any]:
        async with engine.connect() as connection:
            store = PostgresScoringStore(connection)
            customers = [acquired(p, s) for p, s in await store.profiles_with_scores()]
            rows = channel_figures(customers, await store.spend())
        return {"channels": [_channel_view(row) for row in rows]}

    @router.get("/model", tags=["model"], summary="The current model: parameters, fit, bounds")
    async def model() -> dict[str, Any]:
        async with engine.connect() as connection:
            stored = await PostgresScoringStore(connection).latest_stored_model()
        return _model_view(stored, model_to_json(refits.current_model))

    @router.post(
        "/refit",
        tags=["model"],
        summary="Refit now (optionally as of a past date, for backtests), then rescore everyone",
        responses={409: {"model": ErrorMessage, "description": "Another refit is running"}},
    )
    async def refit(
        as_of: Annotated[
            date | None,
            Query(
                ge=EARLIEST.date(),
                description=f"The day the observation ends: from {EARLIEST.date()} to today "
                "(default: today)",
            ),
        ] = None,
    ) -> dict[str, Any]:
        today = datetime.now(UTC).date()
        if as_of is not None and as_of > today:
            # The model of a day to come would score everyone as silent until then.
            raise invalid_parameter(
                "as_of", f"as_of ({as_of}) must not be after today ({today})", as_of
            )
        try:
            stored = await refits.run_once(as_of)
        except RefitBusyError as busy:
            raise HTTPException(409, str(busy)) from None
        return _model_view(stored, {})

    return router
