"""The profile read API (admin token only): look-up, search, timeline, export and erasure."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from services.profile.repository import CustomerFilter, ProfileRepository

MAX_PAGE = 200


def _not_found(customer_id: str) -> HTTPException:
    return HTTPException(404, f"no customer {customer_id}")


def profile_router(repository: ProfileRepository, admin: Any) -> APIRouter:
    router = APIRouter(prefix="/v1/customers", tags=["customers"], dependencies=[Depends(admin)])

    @router.get("", summary="Look up or list customers, with filters and cursor pagination")
    async def list_customers(
        user_id: Annotated[str | None, Query(max_length=256)] = None,
        anonymous_id: Annotated[str | None, Query(max_length=256)] = None,
        email: Annotated[str | None, Query(max_length=320)] = None,
        consent: Literal["unknown", "opted_in", "opted_out"] | None = None,
        has_orders: bool | None = None,
        min_net_revenue: Annotated[float | None, Query(ge=0)] = None,
        updated_since: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> dict[str, Any]:
        where = CustomerFilter(
            user_id, anonymous_id, email, consent, has_orders, min_net_revenue, updated_since
        )
        page = await repository.search(where, limit=limit, after=cursor)
        next_cursor = page[-1]["customer_id"] if len(page) == limit else None
        return {"customers": page, "next_cursor": next_cursor}

    @router.get("/{customer_id}", summary="A customer's profile (merged ids resolve)")
    async def get_customer(customer_id: str) -> dict[str, Any]:
        snapshot = await repository.get(customer_id)
        if snapshot is None:
            raise _not_found(customer_id)
        return snapshot

    @router.get("/{customer_id}/timeline", summary="The customer's recent touchpoints")
    async def timeline(
        customer_id: str,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        before: Annotated[
            datetime | None, Query(description="only events before this time")
        ] = None,
    ) -> dict[str, Any]:
        events = await repository.timeline(customer_id, limit=limit, before=before)
        if events is None:
            raise _not_found(customer_id)
        return {"customer_id": customer_id, "touchpoints": events}

    @router.get("/{customer_id}/export", summary="Everything held on the customer, as JSON")
    async def export(customer_id: str) -> dict[str, Any]:
        exported = await repository.export(customer_id)
        if exported is None:
            raise _not_found(customer_id)
        return exported

    @router.delete(
        "/{customer_id}",
        summary="Erase the customer: rows, a profiles.v1 tombstone, customer_erased event",
    )
    async def erase(customer_id: str) -> dict[str, Any]:
        erasure = await repository.erase(customer_id)
        if erasure is None:
            raise _not_found(customer_id)
        return {
            "erased": erasure.customer_id,
            "identities_forgotten": erasure.identities,
            "touchpoints_deleted": erasure.touchpoints,
        }

    return router
