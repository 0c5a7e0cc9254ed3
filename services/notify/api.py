"""Notify's admin API (admin token only): journeys and their counts, a customer's emails, the
suppression list, the per-customer tracking switch, and test sends of a template."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify.domain import Catalog
from services.notify.store import PostgresNotifyStore
from services.notify.test_send import TestSendRefused, TestSends
from services.runtime.params import NulFree

CustomerId = Annotated[str, Path(max_length=64), NulFree]
# An address mail can go to: no whitespace, and no control character, which SMTP cannot carry.
ADDRESS_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"
Address = Annotated[str, Path(max_length=254, pattern=ADDRESS_PATTERN), NulFree]


class ErrorMessage(BaseModel):
    detail: str


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Literal["unsubscribed", "hard_bounce", "complaint", "operator"] = "operator"
    detail: Annotated[str | None, Field(max_length=1000), NulFree] = None


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: Annotated[str, Field(min_length=1, max_length=200), NulFree] = Field(
        default="api", description="Who pauses it, for the record."
    )


class TestSendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Annotated[str, Field(max_length=254, pattern=ADDRESS_PATTERN), NulFree] = Field(
        description="The address the test goes to."
    )
    customer_id: Annotated[str | None, Field(max_length=64), NulFree] = Field(
        default=None,
        description="Personalise with this customer's profile and scores as notify holds "
        "them; the links still name no customer.",
    )
    trigger: dict[str, Any] | None = Field(
        default=None,
        description="The lifecycle.v1 event that started the journey, as the template reads it "
        "(e.g. a cart_activity with its items, an order_completed with its products).",
    )


class TestSentOut(BaseModel):
    template: str
    kind: Literal["marketing", "transactional"]
    to: str
    message_id: str
    subject: str
    smtp_response: str


class TrackingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(description="False: no open pixel and no click tracking for them.")


def _journey_view(
    journey_id: str,
    catalog: Catalog,
    runs: dict[str, int],
    emails: dict[tuple[str, str], int],
    pause: tuple[str, datetime] | None = None,
) -> dict[str, Any]:
    journey = catalog.journeys[journey_id]
    ended = {k.removeprefix("exited:"): v for k, v in runs.items() if k.startswith("exited:")}
    suppressed: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for (status, reason), count in emails.items():
        by_status[status] = by_status.get(status, 0) + count
        if status == "suppressed":
            suppressed[reason or "unknown"] = suppressed.get(reason or "unknown", 0) + count
    entered = runs.get("entered", 0)
    return {
        "id": journey.id,
        "name": journey.name,
        "description": journey.description,
        "kind": journey.kind,
        "enabled": journey.enabled,
        "paused": pause is not None,
        "paused_by": pause[0] if pause else None,
        "paused_at": pause[1].isoformat() if pause else None,
        "triggers": sorted({t.event for t in journey.triggers}),
        "steps": len(journey.steps),
        "entered": entered,
        "waiting": max(0, entered - sum(ended.values())),
        "ended": ended,
        "converted": ended.get("converted", 0),
        "emails": by_status,
        "sent": by_status.get("sent", 0),
        "suppressed": suppressed,
    }


def notify_router(
    engine: AsyncEngine, catalog: Catalog, admin: Any, test_sends: TestSends
) -> APIRouter:
    router = APIRouter(
        prefix="/v1",
        dependencies=[Depends(admin)],
        responses={401: {"model": ErrorMessage, "description": "Admin token missing or invalid"}},
    )

    @router.get(
        "/journeys",
        tags=["journeys"],
        summary="Every journey with its counts: entered, waiting, ended by reason, converted, "
        "emails by status, suppressed by reason",
    )
    async def journeys() -> dict[str, Any]:
        async with engine.connect() as connection:
            store = PostgresNotifyStore(connection)
            runs, emails = await store.journey_counts(), await store.email_counts()
            pauses = await store.pauses()
        return {
            "journeys": [
                _journey_view(j, catalog, runs.get(j, {}), emails.get(j, {}), pauses.get(j))
                for j in sorted(catalog.journeys)
            ]
        }

    @router.get(
        "/journeys/{journey_id}",
        tags=["journeys"],
        summary="One journey: its definition (journey.v1) and counts",
        responses={404: {"model": ErrorMessage, "description": "No such journey"}},
    )
    async def journey(journey_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
        view = await _one_journey(journey_id)
        return {**view, "definition": catalog.journeys[journey_id].model_dump(mode="json")}

    async def _one_journey(journey_id: str) -> dict[str, Any]:
        if journey_id not in catalog.journeys:
            raise HTTPException(404, f"no journey {journey_id}")
        async with engine.connect() as connection:
            store = PostgresNotifyStore(connection)
            runs, emails = await store.journey_counts(), await store.email_counts()
            pause = (await store.pauses()).get(journey_id)
        return _journey_view(
            journey_id, catalog, runs.get(journey_id, {}), emails.get(journey_id, {}), pause
        )

    @router.post(
        "/journeys/{journey_id}/pause",
        tags=["journeys"],
        summary="Pause a journey: no one enters it and its runs wait where they are (emails "
        "already decided still go); pausing a paused journey keeps who paused it first",
        responses={404: {"model": ErrorMessage, "description": "No such journey"}},
    )
    async def pause(
        journey_id: Annotated[str, Path(max_length=64)], body: PauseIn
    ) -> dict[str, Any]:
        return await _switch(
            journey_id, lambda store: store.pause(journey_id, body.by, datetime.now(UTC))
        )

    @router.post(
        "/journeys/{journey_id}/resume",
        tags=["journeys"],
        summary="Resume a paused journey: its runs go on within half a minute",
        responses={404: {"model": ErrorMessage, "description": "No such journey"}},
    )
    async def resume(journey_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
        return await _switch(journey_id, lambda store: store.resume(journey_id))

    async def _switch(
        journey_id: str, change: Callable[[PostgresNotifyStore], Awaitable[None]]
    ) -> dict[str, Any]:
        """Pause or resume a journey that exists; its view afterwards."""
        if journey_id not in catalog.journeys:
            raise HTTPException(404, f"no journey {journey_id}")
        async with engine.begin() as connection:
            await change(PostgresNotifyStore(connection))
        return await _one_journey(journey_id)

    @router.get(
        "/templates",
        tags=["templates"],
        summary="Every template the journeys send, with its kind",
    )
    async def templates() -> dict[str, Any]:
        kinds = catalog.templates()
        return {"templates": [{"id": t, "kind": kinds[t]} for t in sorted(kinds)]}

    @router.post(
        "/templates/{template}/test-send",
        tags=["templates"],
        summary="Render a template as a journey would and deliver it at once to an address; "
        "not recorded, not tracked, refused for a suppressed address",
        response_model=TestSentOut,
        responses={
            404: {"model": ErrorMessage, "description": "No such template, or no such customer"},
            409: {"model": ErrorMessage, "description": "The address is suppressed"},
            # FastAPI's own 422 (a body it cannot validate) lists the errors; the test send's
            # own refusals are a message. Both are declared, or a client of this document
            # would take one of them for a broken answer.
            422: {
                "description": "The body is invalid (`detail` lists each field and why), or "
                "the template did not render or the SMTP server refused the address (`detail` "
                "says which)",
                "content": {
                    "application/json": {
                        "schema": {
                            "anyOf": [
                                {"$ref": "#/components/schemas/HTTPValidationError"},
                                {"$ref": "#/components/schemas/ErrorMessage"},
                            ]
                        }
                    }
                },
            },
            502: {"model": ErrorMessage, "description": "The SMTP server did not take it"},
        },
    )
    async def test_send(
        template: Annotated[str, Path(max_length=256), NulFree], body: TestSendIn
    ) -> TestSentOut:
        try:
            sent = await test_sends.send(
                template, body.to, customer_id=body.customer_id, trigger=body.trigger
            )
        except TestSendRefused as refused:
            raise HTTPException(refused.status, refused.detail) from None
        return TestSentOut(
            template=sent.template,
            kind=sent.kind,
            to=sent.to,
            message_id=sent.message_id,
            subject=sent.subject,
            smtp_response=sent.smtp_response,
        )

    @router.get(
        "/customers/{customer_id}/notifications",
        tags=["customers"],
        summary="A customer's emails, newest first: decided, sent, suppressed (with why), "
        "bounced, uncertain",
    )
    async def notifications(
        customer_id: CustomerId, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> dict[str, Any]:
        async with engine.connect() as connection:
            rows = await PostgresNotifyStore(connection).notifications_of(customer_id, limit)
        return {"customer_id": customer_id, "notifications": rows}

    @router.put(
        "/customers/{customer_id}/tracking",
        tags=["customers"],
        summary="Turn open and click tracking off (or on again) for one customer",
    )
    async def tracking(customer_id: CustomerId, body: TrackingIn) -> dict[str, Any]:
        async with engine.begin() as connection:
            await PostgresNotifyStore(connection).set_tracking(customer_id, body.enabled)
        return {"customer_id": customer_id, "tracking": body.enabled}

    @router.get(
        "/suppressions",
        tags=["suppressions"],
        summary="The suppression list, by address (cursor: the last address of a page)",
    )
    async def suppressions(
        after: Annotated[str, Query(max_length=254), NulFree] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        async with engine.connect() as connection:
            rows = await PostgresNotifyStore(connection).suppressions(after, limit)
        return {
            "suppressions": rows,
            "next_after": rows[-1]["address"] if len(rows) == limit else None,
        }

    @router.put(
        "/suppressions/{address}",
        tags=["suppressions"],
        summary="Suppress an address: nothing is sent to it, not even transactional email",
    )
    async def suppress(address: Address, body: SuppressionIn) -> dict[str, Any]:
        async with engine.begin() as connection:
            added = await PostgresNotifyStore(connection).suppress(
                address, body.reason, body.detail, datetime.now(UTC)
            )
        return {"address": address.lower(), "reason": body.reason, "added": added}

    @router.delete(
        "/suppressions/{address}",
        tags=["suppressions"],
        summary="Remove an address from the suppression list",
    )
    async def unsuppress(address: Address) -> dict[str, Any]:
        async with engine.begin() as connection:
            await PostgresNotifyStore(connection).unsuppress(address)
        return {"address": address.lower(), "removed": True}

    return router
