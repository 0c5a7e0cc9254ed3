"""The acceptance test of the ingest API: Segment's official Python SDK, pointed at Retain.

The SDK is used as a storefront would use it, changing nothing but its host and write key, and
every event it sends must be on touchpoints.v1.
"""

from collections.abc import Awaitable, Callable

import pytest
from segment.analytics.client import Client

from schemas.topics import TOUCHPOINTS
from services.runtime.settings import ServiceSettings
from tests.integration.ingest.conftest import Source, from_source, read_topic

pytestmark = pytest.mark.integration


async def test_every_call_of_the_segment_sdk_lands_on_the_topic(
    ingest_url: str,
    new_source: Callable[[], Awaitable[Source]],
    settings: ServiceSettings,
) -> None:
    source = await new_source()
    errors: list[Exception] = []
    client = Client(
        write_key=source.key,
        host=ingest_url,
        gzip=True,
        sync_mode=True,  # send on each call, so failures surface here
        on_error=lambda error, _batch: errors.append(error),
    )
    order = {
        "order_id": "sdk-o-1",
        "revenue": 30.0,
        "currency": "USD",
        "products": [{"product_id": "sku-9", "price": 15.0, "quantity": 2}],
    }
    sent = [
        client.identify("sdk-user", {"email": "sdk@shop.example", "name": "Ada"}),
        client.track("sdk-user", "Product Viewed", {"product_id": "sku-9", "price": 15.0}),
        client.track("sdk-user", "Order Completed", order),
        client.track("sdk-user", "Wishlist Shared", {"list": "summer"}),  # a generic event
        client.page("sdk-user", "Shop", "Home", {"url": "https://shop.example/"}),
        client.screen("sdk-user", "App", "Cart"),
        client.group("sdk-user", "company-1", {"name": "Acme"}),
        client.alias("sdk-user-new", "sdk-user"),
    ]
    client.flush()
    assert errors == []
    assert all(success for success, _ in sent)
    message_ids = {message["messageId"] for _, message in sent}

    on_topic = await read_topic(settings, TOUCHPOINTS, from_source(source.id), len(message_ids))
    assert {value["messageId"] for _, value in on_topic} == message_ids
    types = sorted(str(value["event"]["type"]) for _, value in on_topic)  # type: ignore[index]
    assert types == ["alias", "group", "identify", "page", "screen", "track", "track", "track"]
