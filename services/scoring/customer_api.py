"""The dashboard's Customer page, /v1/analytics/customers (admin token or a dashboard session):
search, one customer (profile, scores, ladder step and stage history), their timeline of
touchpoints and emails, export and erasure.

The profile and the emails are the profile and notify services': scoring asks their admin
APIs on the logged-in admin's behalf (the browser holds only its scoring session). The scores
and the history are scoring's own, each an indexed look-up by customer. A service that fails
is named in the answer: the profile's failure is the request's (502), notify's only leaves
the emails out of the timeline and says so."""

from collections.abc import Awaitable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify.client import NotifyClient
from services.profile.client import ProfileClient
from services.runtime.admin_client import ServiceUnavailable
from services.runtime.params import NulFree
from services.scoring.analytics_api import PageRoutes
from services.scoring.domain.analytics.customer import classify, history_lines, merged_timeline
from services.scoring.store import PostgresScoringStore

CustomerId = Annotated[str, Path(min_length=1, max_length=256), NulFree]
SearchText = Annotated[
    str,
    Query(
        min_length=1,
        max_length=320,
        pattern=r"\S",
        description="An email address (looked up by email) or a user id",
    ),
    NulFree,
]
_FAILED: dict[int | str, dict[str, Any]] = {
    502: {"description": "The profile service failed or could not be reached"}
}
_UNKNOWN: dict[int | str, dict[str, Any]] = {404: {"description": "No such customer"}}


def _summary(profile: dict[str, Any]) -> dict[str, Any]:
    """What a list of matches shows of each profile."""
    commerce = profile.get("commerce") or {}
    return {
        "customer_id": profile.get("customer_id"),
        "user_id": profile.get("user_id"),
        "email": profile.get("email"),
        "orders": commerce.get("orders_count"),
        "net_revenue": commerce.get("net_revenue"),
        "currency": commerce.get("currency"),
        "updated_at": profile.get("updated_at"),
    }


async def _from_profile(call: Awaitable[Any], customer_id: str | None = None) -> Any:
    """The profile service's answer; its failure is a 502 naming it, and no answer (404) for
    `customer_id` a 404."""
    try:
        found = await call
    except ServiceUnavailable as failure:
        raise HTTPException(502, str(failure)) from failure
    if found is None and customer_id is not None:
        raise HTTPException(404, f"no customer {customer_id}")
    return found


def customer_routes(profile: ProfileClient, notify: NotifyClient) -> PageRoutes:
    def routes(engine: AsyncEngine) -> APIRouter:
        router = APIRouter(prefix="/customers", responses=_FAILED)

        @router.get(
            "",
            summary="Find customers by email address or user id (the profile service's "
            "look-up): the matches, each with its id, identity, orders and revenue",
        )
        async def search(q: SearchText) -> dict[str, Any]:
            query = classify(q)
            assert query is not None  # the pattern refused blank text
            found = await _from_profile(profile.find(**{query.field: query.value}))
            return {"query": asdict(query), "customers": [_summary(p) for p in found]}

        @router.get(
            "/{customer_id}",
            summary="One customer: the profile (identity, consent, acquisition, activity, "
            "commerce, loyalty), scoring's scores record, and the ladder step and lifecycle "
            "stage history as step-chart points, with every kept transition",
            responses=_UNKNOWN,
        )
        async def customer(customer_id: CustomerId) -> dict[str, Any]:
            found = await _from_profile(profile.get(customer_id), customer_id)
            resolved = str(found.get("customer_id") or customer_id)  # a merged id resolves
            async with engine.connect() as connection:
                store = PostgresScoringStore(connection)
                scores = await store.scores_of(resolved)
                kept = await store.transitions_of(resolved)
            current = {
                "ladder_step": (scores or {}).get("ladder_step"),
                "lifecycle_stage": (scores or {}).get("lifecycle_stage"),
            }
            now = datetime.now(UTC)
            return {
                "customer_id": resolved,
                "profile": found,
                "scores": scores,
                "history": [
                    {
                        "dimension": line.dimension,
                        "segments": list(line.segments),
                        "points": [[at.isoformat(), segment] for at, segment in line.points],
                    }
                    for line in history_lines(kept, current, now)
                ],
                "transitions": [
                    {
                        "event_id": t.event_id,
                        "dimension": t.dimension,
                        "from": t.from_segment,
                        "to": t.to_segment,
                        "at": t.at.isoformat(),
                    }
                    for t in kept
                ],
            }

        @router.get(
            "/{customer_id}/timeline",
            summary="The customer's touchpoints (profile) and emails (notify), newest first; "
            "`unavailable` names a service whose part is missing because it failed",
            responses=_UNKNOWN,
        )
        async def timeline(
            customer_id: CustomerId, limit: Annotated[int, Query(ge=1, le=200)] = 50
        ) -> dict[str, Any]:
            page = await _from_profile(profile.timeline(customer_id, limit), customer_id)
            unavailable = []
            try:
                emails = await notify.notifications(customer_id, limit)
            except ServiceUnavailable as failure:
                emails = []
                unavailable.append({"service": failure.service, "message": str(failure)})
            entries = merged_timeline(page["touchpoints"], emails, limit)
            return {
                "customer_id": customer_id,
                "entries": [asdict(entry) for entry in entries],
                "unavailable": unavailable,
            }

        @router.get(
            "/{customer_id}/export",
            summary="Everything the profile service holds on the customer, as a JSON file to "
            "download",
            responses=_UNKNOWN,
        )
        async def export(customer_id: CustomerId) -> JSONResponse:
            exported = await _from_profile(profile.export(customer_id), customer_id)
            name = "".join(c if c.isalnum() or c in "-_" else "_" for c in customer_id)
            return JSONResponse(
                exported,
                headers={"Content-Disposition": f'attachment; filename="customer-{name}.json"'},
            )

        @router.delete(
            "/{customer_id}",
            summary="Erase the customer everywhere (the profile service's erasure: its rows, a "
            "profiles.v1 tombstone and customer_erased, which scoring and notify follow)",
            responses=_UNKNOWN,
        )
        async def erase(customer_id: CustomerId) -> dict[str, Any]:
            erased: dict[str, Any] = await _from_profile(profile.erase(customer_id), customer_id)
            return erased

        return router

    return routes
