"""RudderStack's JavaScript SDK (@rudderstack/analytics-js v3), unchanged, in a real Chromium.

It is pointed at Retain by configuration alone: the write key, ingest as its data plane
(`dataPlaneUrl`) and as the control plane it loads its source config from (`configUrl`). The
npm package's bundled build carries its plugins, so nothing is loaded from RudderStack's CDN.
RudderStack sends an identify's traits as `context.traits`; ingest moves them to `traits`,
where the profile reads them.
"""

from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.integration.helpers import RunningService
from tests.integration.ingest.sdks.conftest import (
    Storefront,
    Visit,
    WriteKey,
    answered,
    assert_clean,
    eventually,
    folded_profile,
    page_url,
)

pytestmark = pytest.mark.integration

OpenPage = Callable[..., Awaitable[Visit]]


async def test_the_bundled_sdk_with_ingest_as_data_plane_and_control_plane(
    visit: OpenPage,
    storefront: Storefront,
    sdk_ingest: RunningService,
    sdk_profile: RunningService,
    write_key: WriteKey,
    user_id: str,
) -> None:
    page = await visit(
        page_url(storefront, "rudderstack.html", sdk_ingest.url, write_key.key, user_id)
    )
    await answered(page, "POST", {"/v1/identify", "/v1/track", "/v1/page"})

    assert page.traffic.paths("GET") == {"/sourceConfig/"}
    assert (await page.storefront_state())["errors"] == []
    assert_clean(page)
    assert page.traffic.console_errors == []

    customer = await folded_profile(sdk_profile.url, user_id)
    assert sorted(t["event"]["type"] for t in customer["timeline"]) == [
        "identify",
        "page",
        "track",
    ]
    [identify] = [t for t in customer["timeline"] if t["event"]["type"] == "identify"]
    assert identify["event"]["traits"]["email"] == f"{user_id}@shop.example"
    assert "traits" not in identify["event"]["context"]


async def test_beacon_delivery_when_the_shopper_leaves_the_page(
    visit: OpenPage,
    storefront: Storefront,
    sdk_ingest: RunningService,
    sdk_profile: RunningService,
    write_key: WriteKey,
    user_id: str,
) -> None:
    url = page_url(storefront, "rudderstack.html", sdk_ingest.url, write_key.key, user_id)
    page = await visit(url + "&beacon=1")

    async def called() -> bool:
        return bool((await page.storefront_state())["done"])

    await eventually(called, what="the storefront's calls made")
    assert page.traffic.paths("POST") == set()  # queued: sent every 10 minutes, or ...
    await page.page.goto("about:blank")  # ... as the shopper leaves the page
    # A beacon sent while the page unloads is no longer the page's request, so what ingest
    # answered is read from its own metrics.
    await folded_profile(sdk_profile.url, user_id)
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{sdk_ingest.url}/metrics")).text
    assert 'route="/beacon/v1/batch",service="ingest",status="200"' in metrics
    assert_clean(page)


async def test_the_source_config_needs_a_known_write_key(sdk_ingest: RunningService) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{sdk_ingest.url}/sourceConfig/", params={"writeKey": "wk_unknown"}
        )
    assert response.status_code == 401
    assert response.json() == {"success": False, "message": "unknown or revoked write key"}
