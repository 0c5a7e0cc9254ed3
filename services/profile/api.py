"""The profile read API (admin token only): look-up, search, timeline, export and erasure."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel

from schemas._types import MAX_ID, MAX_MONEY
from services.profile.repository import CustomerFilter, ProfileRepository, TimelinePosition
from services.runtime.params import Cursor, DbDatetime, NulFree

MAX_PAGE = 200

# At most MAX_ID characters, as every id an event carries (ours are 28: cus_ and a hash).
CustomerId = Annotated[
    str,
    Path(max_length=MAX_ID, description="an id merged into another resolves to it"),
    NulFree,
]
TIMELINE_CURSOR = Cursor(TimelinePosition)


class ErrorMessage(BaseModel):
    """The body of an HTTPException's answer."""

    detail: str


_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorMessage, "description": "Admin token missing or invalid"}
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorMessage, "description": "No such customer"}
}


def _not_found(customer_id: str) -> HTTPException:
    return HTTPException(404, f"no customer {customer_id}")


def profile_router(repository: ProfileRepository, admin: Any) -> APIRouter:
    router = APIRouter(
        prefix="/v1/customers",
        tags=["customers"],
        dependencies=[Depends(admin)],
        responses=_UNAUTHORIZED,
    )

    @router.get("", summary="Look up or list customers, with filters and cursor pagination")
    async def list_customers(
        user_id: Annotated[str | None, Query(max_length=256), NulFree] = None,
        anonymous_id: Annotated[str | None, Query(max_length=256), NulFree] = None,
        email: Annotated[str | None, Query(max_length=320), NulFree] = None,
        consent: Literal["unknown", "opted_in", "opted_out"] | None = None,
        has_orders: bool | None = None,
        min_net_revenue: Annotated[
            float | None, Query(ge=0, le=MAX_MONEY, allow_inf_nan=False)
        ] = None,
        updated_since: DbDatetime | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[
            str | None,
            Query(max_length=MAX_ID, description="next_cursor of the previous page"),
            NulFree,
        ] = None,
    ) -> dict[str, Any]:
        where = CustomerFilter(
            user_id, anonymous_id, email, consent, has_orders, min_net_revenue, updated_since
        )
        page = await repository.search(where, limit=limit, after=cursor)
        next_cursor = page[-1]["customer_id"] if len(page) == limit else None
        return {"customers": page, "next_cursor": next_cursor}

    @router.get(
        "/{customer_id}",
        summary="A customer's profile (merged ids resolve)",
        responses=_NOT_FOUND,
    )
    async def get_customer(customer_id: CustomerId) -> dict[str, Any]:
        snapshot = await repository.get(customer_id)
        if snapshot is None:
            raise _not_found(customer_id)
        return snapshot

    @router.get(
        "/{customer_id}/timeline",
        summary="The customer's recent touchpoints",
        responses=_NOT_FOUND,
    )
    async def timeline(
        customer_id: CustomerId,
        after: Annotated[TimelinePosition | None, Depends(TIMELINE_CURSOR.parameter)],
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        before: Annotated[
            DbDatetime | None, Query(description="only events before this time")
        ] = None,
    ) -> dict[str, Any]:
        page = await repository.timeline(customer_id, limit=limit, before=before, after=after)
        if page is None:
            raise _not_found(customer_id)
        return {
            "customer_id": customer_id,
            "touchpoints": page.touchpoints,
            "next_cursor": TIMELINE_CURSOR.encode(page.next) if page.next else None,
        }

    @router.get(
        "/{customer_id}/export",
        summary="Everything held on the customer, as JSON",
        responses=_NOT_FOUND,
    )
    async def export(customer_id: CustomerId) -> dict[str, Any]:
        exported = await repository.export(customer_id)
        if exported is None:
            raise _not_found(customer_id)
        return exported

    @router.delete(
        "/{customer_id}",
        summary="Erase the customer: rows, a profiles.v1 tombstone, customer_erased event",
        responses=_NOT_FOUND,
    )
    async def erase(customer_id: CustomerId) -> dict[str, Any]:
        erasure = await repository.erase(customer_id)
        if erasure is None:
            raise _not_found(customer_id)
        return {
            "erased": erasure.customer_id,
            "identities_forgotten": erasure.identities,
            "touchpoints_deleted": erasure.touchpoints,
        }

    return router
