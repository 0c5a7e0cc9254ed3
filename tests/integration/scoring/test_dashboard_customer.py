"""The dashboard's Customer page in a real headless Chromium, behind the real ingest, profile,
scoring and notify: a customer sent through the storefront is found by email; the profile,
scores and ladder step and stage history drawn are the APIs' answers; the timeline interleaves
their touchpoints and emails; export downloads the profile's JSON; erase asks first (cancel
keeps the customer, confirm erases them). With the profile service unreachable, the page
says so. The screenshot is .artifacts/screenshots/customer.png."""

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from services.devstack.ports import free_port
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import RunningService, running_service
from tests.integration.notify.conftest import notify  # noqa: F401 (fixture)
from tests.integration.profile.conftest import (
    ADMIN,
    Storefront,
    customer_by_user,
    order,
    wait_for,
)
from tests.integration.scoring.dashboard import drawn, log_in, screenshot

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def customer_scoring(
    settings: ServiceSettings,
    profile: RunningService,
    notify: RunningService,  # noqa: F811 (the fixture imported above)
) -> Iterator[RunningService]:
    """Scoring that reaches the real profile and notify, for its customer page."""
    with running_service(
        "scoring",
        settings,
        RETAIN_PROFILE_URL=profile.url,
        RETAIN_NOTIFY_URL=notify.url,
        RETAIN_ANALYTICS_SNAPSHOT_SECONDS="1",
    ) as service:
        yield service


async def _json(url: str, **params: Any) -> Any:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(url, params=params, headers=ADMIN)
    return answer.json() if answer.status_code == 200 else None


async def _find(page: Page, text: str) -> dict[str, Any]:
    """Search from the page; the customer JSON the page was given."""
    await page.fill("#customer-query", text)
    async with page.expect_response(
        lambda r: "/v1/analytics/customers/" in r.url and r.url.split("/")[-1].startswith("cus")
    ) as answered:
        await page.click("#customer-search button")
    given: dict[str, Any] = await (await answered.value).json()
    await page.wait_for_selector("article[data-section=timeline]")
    await page.wait_for_selector("main[data-state=ready]")
    return given


async def test_a_customer_is_found_shown_exported_and_erased_after_a_confirmation(
    customer_scoring: RunningService,
    profile: RunningService,
    notify: RunningService,  # noqa: F811
    storefront: Storefront,
    page: Page,
) -> None:
    run = uuid.uuid4().hex[:6]
    user, email = f"cust-{run}", f"Shopper.{run}@example.com"
    now = datetime.now(UTC)
    await storefront.send(
        [
            {"type": "identify", "userId": user, "traits": {"email": email}},
            {"type": "page", "userId": user, "name": "Home", "properties": {"path": "/"}},
            {
                "type": "track",
                "userId": user,
                "event": "Product Viewed",
                "properties": {"product_id": "p-1"},
            },
        ]
    )
    found = await wait_for(lambda: customer_by_user(profile.url, user))
    customer_id = found["customer_id"]
    scores_url = f"{customer_scoring.url}/v1/scores/{customer_id}"
    await wait_for(lambda: _json(scores_url))  # a prospect first
    await storefront.send(
        [
            order(user, f"{run}-o1", 30.0, timestamp=(now - timedelta(days=20)).isoformat()),
            order(user, f"{run}-o2", 45.0, timestamp=now.isoformat()),
        ]
    )

    async def moved_up() -> Any:
        scores = await _json(scores_url)
        # Both orders in the ledger and the profile: the scores settle.
        settled = scores and float(scores["clv_historical"]) == 75.0
        return scores if settled and scores["ladder_step"] != "prospect" else None

    scores = await wait_for(moved_up)
    notifications_url = f"{notify.url}/v1/customers/{customer_id}/notifications"

    async def emailed() -> Any:
        return ((await _json(notifications_url)) or {}).get("notifications")

    emails = await wait_for(emailed)  # the order's thank-you

    await log_in(page, customer_scoring.url)
    await page.wait_for_selector("main[data-state=ready]")
    await page.click("nav a[data-page=customer]")
    await page.wait_for_selector("#customer-query")
    given = await _find(page, email.upper())
    assert given["customer_id"] == customer_id
    assert given["profile"] == await _json(f"{profile.url}/v1/customers/{customer_id}")
    assert given["scores"] == await _json(scores_url)
    ladder = {line["dimension"]: line for line in given["history"]}["ladder_step"]
    assert [segment for _, segment in ladder["points"]][:2] == ["prospect", scores["ladder_step"]]
    for line in given["history"]:
        assert (
            await drawn(page, f"customer.{line['dimension']}", "o => o.series[0].data")
            == (line["points"])
        )
        assert (
            await drawn(page, f"customer.{line['dimension']}", "o => o.yAxis[0].data")
            == (line["segments"])
        )
    identity = page.locator("article[data-section=identity]")
    assert email.lower() in (await identity.text_content() or "")
    kinds = await page.eval_on_selector_all(
        "ol.timeline li", "items => items.map(i => i.dataset.kind)"
    )
    assert kinds.count("email") == len(emails)
    assert kinds.count("touchpoint") >= 5  # identify, page, product view, two orders
    timeline = await page.text_content("ol.timeline") or ""
    assert timeline.count("Order Completed") == 2
    assert "page: Home" in timeline
    await screenshot(page, "customer")

    async with page.expect_download() as downloading:
        await page.click("#customer-export")
    download = await downloading.value
    exported = json.loads((await download.path()).read_bytes())
    fresh = await _json(f"{profile.url}/v1/customers/{customer_id}/export")
    assert exported.pop("exported_at") <= fresh.pop("exported_at")  # stamped on each export
    assert exported == fresh

    assert not await page.is_visible("#erase-confirm")
    await page.click("#customer-erase")
    assert await page.is_visible("#erase-confirm")
    assert await page.is_disabled("#erase-go")
    await page.click("#erase-cancel")
    assert not await page.is_visible("#erase-confirm")
    assert await _json(f"{profile.url}/v1/customers/{customer_id}") is not None

    await page.click("#customer-erase")
    await page.fill("#erase-typed", customer_id)
    await page.click("#erase-go")
    await page.wait_for_selector("#message:has-text('was erased')")
    async with httpx.AsyncClient(timeout=10) as client:
        gone = await client.get(f"{profile.url}/v1/customers/{customer_id}", headers=ADMIN)
    assert gone.status_code == 404


async def test_the_profile_service_unreachable_is_said_on_the_page(
    settings: ServiceSettings, page: Page, console_errors: list[str]
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with running_service(
        "scoring", settings, RETAIN_PROFILE_URL=nowhere, RETAIN_NOTIFY_URL=nowhere
    ) as scoring:
        await log_in(page, scoring.url)
        await page.wait_for_selector("main[data-state=ready]")
        await page.click("nav a[data-page=customer]")
        await page.fill("#customer-query", "someone@example.com")
        await page.click("#customer-search button")
        await page.wait_for_selector("main[data-state=error]")
        message = await page.text_content("#message") or ""
        assert "the profile service is unavailable: it cannot be reached" in message
    # The 502 is the browser's only error report.
    assert [e for e in console_errors if "502" not in e] == []
    console_errors.clear()
