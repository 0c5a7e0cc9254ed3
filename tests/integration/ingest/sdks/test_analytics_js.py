"""Segment's browser SDK, analytics.js (@segment/analytics-next), unchanged, in a real Chromium:
every way a storefront loads it, pointed at Retain by its host and write key alone.

Each test loads a page, lets the SDK identify the shopper, track a Product Viewed and a page
view, and finds them folded into the shopper's profile through profile's API. Every request the
browser makes to ingest must be answered below 400, and none may leave the machine (no Segment
CDN, no Segment API).
"""

from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.integration.helpers import RunningService
from tests.integration.ingest.sdks.conftest import (
    PAGES,
    Storefront,
    Visit,
    WriteKey,
    answered,
    assert_clean,
    eventually,
    folded_profile,
    page_url,
    render_snippet,
)

pytestmark = pytest.mark.integration

OpenPage = Callable[..., Awaitable[Visit]]


async def test_the_npm_package_with_ingest_as_its_cdn(
    visit: OpenPage,
    storefront: Storefront,
    sdk_ingest: RunningService,
    sdk_profile: RunningService,
    write_key: WriteKey,
    user_id: str,
) -> None:
    page = await visit(
        page_url(storefront, "analytics-next.html", sdk_ingest.url, write_key.key, user_id)
    )
    await answered(page, "POST", {"/v1/i", "/v1/t", "/v1/p"})

    assert page.traffic.paths("GET") == {f"/v1/projects/{write_key.key}/settings"}
    state = await page.storefront_state()
    assert state["errors"] == []
    assert_clean(page)
    # Over plain http the settings turn analytics.js's metrics off (it would send them over
    # https); no console error either.
    assert page.traffic.console_errors == []

    customer = await folded_profile(sdk_profile.url, user_id)
    types = sorted(t["event"]["type"] for t in customer["timeline"])
    assert types == ["identify", "page", "track"]
    [track] = [t for t in customer["timeline"] if t["event"]["type"] == "track"]
    assert track["event"]["properties"]["product_id"] == "sku-42"
    assert track["event"]["context"]["library"]["name"] == "analytics.js"
    assert track["sourceId"] == write_key.source_id


async def test_batching_delivery_and_the_metrics_endpoint(
    visit: OpenPage,
    storefront: Storefront,
    sdk_ingest: RunningService,
    sdk_profile: RunningService,
    write_key: WriteKey,
    user_id: str,
) -> None:
    url = page_url(
        storefront, "analytics-next-batching.html", sdk_ingest.url, write_key.key, user_id
    )
    page = await visit(url, fake_clock=True)

    async def called() -> bool:
        return bool((await page.storefront_state())["done"])

    await eventually(called, what="the storefront's calls made")
    # analytics.js sends a batch 5 s after its first event, and its metrics every 30 s: the
    # page's clock is moved on rather than waited for.
    await page.page.clock.fast_forward(31_000)
    await answered(page, "POST", {"/v1/b", "/v1/m"})

    assert page.traffic.paths("POST") == {"/v1/b", "/v1/m"}
    assert page.traffic.paths("GET") == set()  # no settings request: they were given inline
    assert (await page.storefront_state())["errors"] == []
    assert_clean(page)
    customer = await folded_profile(sdk_profile.url, user_id)
    assert sorted(t["event"]["type"] for t in customer["timeline"]) == [
        "identify",
        "page",
        "track",
    ]

    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{sdk_ingest.url}/metrics")).text
    assert 'retain_ingest_analytics_js_metrics_total{metric="analytics_js.invoke"}' in metrics


async def test_the_classic_snippet_with_ingest_as_its_host(
    visit: OpenPage,
    storefront: Storefront,
    sdk_ingest: RunningService,
    sdk_profile: RunningService,
    write_key: WriteKey,
    user_id: str,
) -> None:
    template = (PAGES / "snippet.html").read_text()
    html = template.replace("/* SEGMENT SNIPPET */", render_snippet(sdk_ingest.url, write_key.key))
    query = httpx.QueryParams({"user": user_id})
    page = await visit(storefront.add_page(f"snippet-{user_id}.html", html) + f"?{query}")

    async def ready() -> bool:
        return bool((await page.storefront_state()).get("ready"))

    await eventually(ready, what="analytics.js loaded from ingest")
    await answered(page, "POST", {"/v1/i", "/v1/t", "/v1/p"})

    gets = page.traffic.paths("GET")
    assert f"/analytics.js/v1/{write_key.key}/analytics.min.js" in gets
    assert f"/v1/projects/{write_key.key}/settings" in gets
    # trackLink's code is one of analytics.js's bundles: ingest served that too.
    assert any(path.startswith("/analytics-next/bundles/auto-track.") for path in gets)
    assert (await page.storefront_state())["errors"] == []
    assert_clean(page)
    assert page.traffic.console_errors == []

    # The snippet's own analytics.page() and the storefront's: two page views.
    customer = await folded_profile(sdk_profile.url, user_id, page_views=2)
    assert sorted(t["event"]["type"] for t in customer["timeline"]) == [
        "identify",
        "page",
        "page",
        "track",
    ]
