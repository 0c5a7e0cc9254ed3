"""The scoring admin API (admin token only): a customer's scores, the model, refits."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from services.runtime.params import NulFree
from services.scoring.refit_job import RefitBusyError, RefitJob
from services.scoring.store import PostgresScoringStore, StoredModel, model_to_json

CustomerId = Annotated[str, Path(max_length=64), NulFree]


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
    async def refit(as_of: date | None = None) -> dict[str, Any]:
        try:
            stored = await refits.run_once(as_of)
        except RefitBusyError as busy:
            raise HTTPException(409, str(busy)) from None
        return _model_view(stored, {})

    return router
