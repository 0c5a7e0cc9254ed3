"""The Customer page's pure parts (the search's classification, the history as step-chart
points, the timeline's interleaving) and its API over stand-in profile and notify services:
a parameter the page cannot use is a 422 naming it, a failing service is named."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from services.notify.client import NotifyClient
from services.profile.client import ProfileClient
from services.runtime.admin_client import AdminClient
from services.scoring.customer_api import customer_routes
from services.scoring.domain.analytics.customer import (
    STAGES,
    SearchQuery,
    classify,
    history_lines,
    merged_timeline,
)
from services.scoring.domain.standing import LADDER
from services.scoring.domain.transitions import Transition

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_an_address_is_looked_up_by_email_lowercased_anything_else_by_user_id() -> None:
    assert classify("  Ada@Example.COM ") == SearchQuery("email", "ada@example.com")
    assert classify("u-42") == SearchQuery("user_id", "u-42")
    assert classify("@handle") == SearchQuery("user_id", "@handle")
    assert classify("name@") == SearchQuery("user_id", "name@")
    assert classify("   ") is None


def change(dimension: str, to: str, hours_ago: float, before: str | None = None) -> Transition:
    at = NOW - timedelta(hours=hours_ago)
    return Transition(f"e-{dimension}-{to}-{hours_ago}", "c1", dimension, before, to, at)  # type: ignore[arg-type]


def test_the_history_steps_through_each_change_and_holds_the_current_segment_until_now() -> None:
    kept = [
        change("ladder_step", "client", 5, "customer"),
        change("ladder_step", "customer", 10),
        change("lifecycle_stage", "acquisition", 10),
        change("rfm_segment", "new", 10),  # not charted on this page
    ]
    ladder, stage = history_lines(
        kept, {"ladder_step": "client", "lifecycle_stage": "acquisition"}, NOW
    )
    assert ladder.dimension == "ladder_step"
    assert ladder.segments == LADDER
    assert ladder.points == [
        (NOW - timedelta(hours=10), "customer"),
        (NOW - timedelta(hours=5), "client"),
        (NOW, "client"),
    ]
    assert stage.segments == STAGES
    assert stage.points == [(NOW - timedelta(hours=10), "acquisition"), (NOW, "acquisition")]


def test_a_customer_without_scores_or_history_has_empty_lines() -> None:
    assert [line.points for line in history_lines([], {}, NOW)] == [[], []]


@given(st.lists(st.integers(min_value=1, max_value=10_000), max_size=20))
def test_every_history_point_is_in_time_order_and_on_the_axis(hours: list[int]) -> None:
    kept = [change("ladder_step", LADDER[h % len(LADDER)], h) for h in hours]
    [ladder, _] = history_lines(kept, {"ladder_step": "customer"}, NOW)
    times = [at for at, _ in ladder.points]
    assert times == sorted(times)
    assert {segment for _, segment in ladder.points} <= set(LADDER)
    assert ladder.points[-1] == (NOW, "customer")


def touchpoint(at: str, **event: Any) -> dict[str, Any]:
    """Ingest's envelope around a Segment event, as the profile's timeline gives it."""
    return {"timestamp": at, "event": {"type": "track", "event": "Product Viewed", **event}}


def email(at: str, status: str = "sent", reason: str | None = None) -> dict[str, Any]:
    return {
        "created_at": at,
        "journey": "post_purchase",
        "template": "order_thank_you",
        "status": status,
        "reason": reason,
    }


def test_touchpoints_and_emails_are_interleaved_newest_first_across_time_zones() -> None:
    merged = merged_timeline(
        [
            touchpoint("2026-06-01T10:00:00Z"),
            touchpoint(
                "2026-06-01T08:00:00.000Z",
                event="Order Completed",
                properties={"order_id": "o-1", "revenue": 42.5, "currency": "EUR"},
            ),
            touchpoint("2026-05-31T08:00:00Z", type="page", properties={"path": "/"}),
        ],
        # 11:30 at +02:00 is 09:30 UTC: between the two touchpoints.
        [
            email("2026-06-01T11:30:00+02:00"),
            email("2026-06-01T12:00:00+00:00", "suppressed", "quiet"),
        ],
        limit=10,
    )
    assert [(e.kind, e.title, e.detail) for e in merged] == [
        ("email", "email order_thank_you (post_purchase)", "suppressed: quiet"),
        ("touchpoint", "Product Viewed", ""),
        ("email", "email order_thank_you (post_purchase)", "sent"),
        ("touchpoint", "Order Completed", "42.5 EUR"),
        ("touchpoint", "page: /", ""),
    ]
    assert len(merged_timeline([touchpoint("2026-06-01T10:00:00Z")] * 5, [], limit=3)) == 3


# The API, with the profile and notify services stood in by httpx transports.

Handler = Callable[[httpx.Request], httpx.Response]


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def app_with(profile: Handler, notify: Handler) -> TestClient:
    routes = customer_routes(
        ProfileClient(
            AdminClient("profile", "http://p", "t", transport=httpx.MockTransport(profile))
        ),
        NotifyClient(AdminClient("notify", "http://n", "t", transport=httpx.MockTransport(notify))),
    )
    app = FastAPI()
    # The routes tested here read no table: no engine.
    app.include_router(routes(None))  # type: ignore[arg-type]
    return TestClient(app)


def profile_service(request: httpx.Request) -> httpx.Response:
    assert request.headers["Authorization"] == "Bearer t"
    if request.url.path == "/v1/customers":
        email_asked = request.url.params.get("email")
        found = [{"customer_id": "c1", "email": email_asked}] if email_asked else []
        return httpx.Response(200, json={"customers": found, "next_cursor": None})
    if request.url.path == "/v1/customers/c1/timeline":
        return httpx.Response(200, json={"touchpoints": [touchpoint("2026-06-01T10:00:00Z")]})
    return httpx.Response(404, json={"detail": "no customer"})


def test_a_search_asks_the_profile_service_by_email_and_lists_the_matches() -> None:
    answer = app_with(profile_service, unreachable).get("/customers", params={"q": "A@B.io"})
    assert answer.status_code == 200
    assert answer.json()["query"] == {"field": "email", "value": "a@b.io"}
    assert [c["email"] for c in answer.json()["customers"]] == ["a@b.io"]


@pytest.mark.parametrize("q", ["", "   ", "a\x00b", "x" * 321])
def test_a_search_text_the_page_cannot_use_is_a_422_naming_q(q: str) -> None:
    answer = app_with(profile_service, unreachable).get("/customers", params={"q": q})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "q"]


def test_a_timeline_limit_out_of_range_is_a_422_naming_limit() -> None:
    answer = app_with(profile_service, unreachable).get("/customers/c1/timeline?limit=0")
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "limit"]


def test_the_profile_service_unreachable_is_a_502_naming_it() -> None:
    client = app_with(unreachable, unreachable)
    for method, path in [
        ("GET", "/customers?q=u-1"),
        ("GET", "/customers/c1/timeline"),
        ("GET", "/customers/c1/export"),
        ("DELETE", "/customers/c1"),
    ]:
        answer = client.request(method, path)
        assert answer.status_code == 502, path
        assert answer.json()["detail"] == (
            "the profile service is unavailable: it cannot be reached"
        )


def test_notify_down_leaves_the_touchpoints_and_says_the_emails_are_missing() -> None:
    answer = app_with(profile_service, lambda r: httpx.Response(503)).get("/customers/c1/timeline")
    assert answer.status_code == 200
    assert [e["title"] for e in answer.json()["entries"]] == ["Product Viewed"]
    assert answer.json()["unavailable"] == [
        {"service": "notify", "message": "the notify service is unavailable: it answered 503"}
    ]


def test_an_unknown_customer_is_a_404() -> None:
    client = app_with(profile_service, unreachable)
    assert client.get("/customers/nobody/timeline").status_code == 404
    assert client.delete("/customers/nobody").status_code == 404
