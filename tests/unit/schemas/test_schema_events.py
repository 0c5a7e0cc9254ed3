"""The Segment envelope and typed events: what parse_event accepts, and what it refuses."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from schemas import (
    EVENT_CLASSES,
    EVENT_PROPERTIES,
    TYPED_EVENT_CLASSES,
    TYPED_EVENTS,
    AliasEvent,
    CartViewedEvent,
    GroupEvent,
    IdentifyEvent,
    InvalidEvent,
    OrderCompletedEvent,
    OrderRefundedEvent,
    PageEvent,
    ScreenEvent,
    TrackEvent,
    apply_batch_defaults,
    exact,
    parse_event,
)


def order_completed(**properties: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "order_id": "50314b8e9bcf000000000000",
        "checkout_id": "fksdjfsdjfisjf9sdfjsd9f",
        "total": 27.5,
        "revenue": 25.0,
        "shipping": 3,
        "tax": 2,
        "discount": 2.5,
        "coupon": "hasbros",
        "currency": "USD",
        "products": [
            {
                "product_id": "507f1f77bcf86cd799439011",
                "sku": "45790-32",
                "name": "Monopoly: 3rd Edition",
                "price": 19,
                "quantity": 1,
                "category": "Games",
                "url": "https://shop.example/p/monopoly",
                "image_url": "https://shop.example/p/monopoly.jpg",
            },
            {"product_id": "505bd76785ebb509fc183733", "price": 3, "quantity": 2},
        ],
    }
    props.update(properties)
    return track("Order Completed", props)


def track(event: str, properties: Any = None, **fields: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "type": "track",
        "event": event,
        "userId": "user-1",
        "anonymousId": "anon-1",
        "messageId": "msg-1",
        "timestamp": "2024-05-01T10:00:00.000Z",
        "sentAt": "2024-05-01T10:00:01.000Z",
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "ip": "203.0.113.7",
            "userAgent": "Mozilla/5.0",
            "locale": "en-US",
            "timezone": "Europe/Berlin",
            "page": {"path": "/thanks", "url": "https://shop.example/thanks", "title": "Thanks"},
            "campaign": {"name": "spring", "source": "newsletter", "medium": "email"},
            "referrer": {"type": "link", "url": "https://blog.example/post"},
        },
    }
    if properties is not None:
        raw["properties"] = properties
    raw.update(fields)
    return raw


# A valid properties object for every typed event, and an invalid variant with the field the
# error must name.
TYPED_EXAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "Product Viewed": (
        {"product_id": 42, "sku": "G-32", "name": "Monopoly", "price": 18.99, "currency": "eur"},
        {"product_id": "x" * 257},
        "properties.product_id",
    ),
    "Product Added": (
        {"cart_id": "c1", "product_id": "p1", "price": 18.99, "quantity": 2},
        {"cart_id": "c1", "product_id": "p1", "quantity": -1},
        "properties.quantity",
    ),
    "Product Removed": (
        {"cart_id": "c1", "product_id": "p1", "quantity": 1},
        {"cart_id": "c1", "price": "cheap"},
        "properties.price",
    ),
    "Cart Viewed": (
        {"cart_id": "c1", "products": [{"product_id": "p1", "price": 3, "quantity": 1}]},
        {"cart_id": "c1", "products": {"product_id": "p1"}},
        "properties.products",
    ),
    "Checkout Started": (
        {"order_id": "o1", "value": 30, "revenue": 25, "currency": "USD", "products": []},
        {"order_id": "o1", "currency": "dollars"},
        "properties.currency",
    ),
    "Order Completed": (
        order_completed()["properties"],
        {**order_completed()["properties"], "revenue": -5},
        "properties.revenue",
    ),
    "Order Refunded": (
        {"order_id": "o1", "total": 10, "currency": "USD", "products": [{"product_id": "p1"}]},
        {"total": 10},
        "properties.order_id",
    ),
    "Order Cancelled": (
        {"order_id": "o1", "total": 30, "currency": "USD"},
        {"order_id": ""},
        "properties.order_id",
    ),
    "Coupon Applied": (
        {"order_id": "o1", "coupon_id": "SPRING", "coupon_name": "Spring", "discount": 5},
        {"coupon_id": "SPRING", "discount": -5},
        "properties.discount",
    ),
    "Signed Up": (
        {"type": "organic", "email": "ada@example.com", "first_name": "Ada"},
        {"email": "not-an-email"},
        "properties.email",
    ),
    "Email Opened": (
        {"email_id": "n-1", "email_subject": "Welcome", "campaign_id": "welcome"},
        {"email_id": ["n-1"]},
        "properties.email_id",
    ),
    "Email Link Clicked": (
        {"email_id": "n-1", "link_url": "https://shop.example/?utm_source=email"},
        {"email_id": "n-1", "link_url": "https://x.example/" + "a" * 2100},
        "properties.link_url",
    ),
    "Unsubscribed": (
        {"email_id": "n-1", "list_id": "news", "list_name": "Newsletter"},
        {"list_id": {"id": 1}},
        "properties.list_id",
    ),
    "Referral Code Used": (
        {"referral_code": "ADA10", "referrer_id": "user-0"},
        {"referrer_id": "user-0"},
        "properties.referral_code",
    ),
    "Review Submitted": (
        {"review_id": "r1", "product_id": "p1", "rating": 4.5, "review_body": "Great"},
        {"review_id": "r1", "rating": 7},
        "properties.rating",
    ),
    "Support Ticket Opened": (
        {"ticket_id": "t1", "subject": "Where is my order?", "channel": "email"},
        {"subject": "Where is my order?"},
        "properties.ticket_id",
    ),
    "Support Ticket Resolved": (
        {"ticket_id": "t1", "resolution": "refunded", "satisfaction": 5},
        {"ticket_id": "t" * 300},
        "properties.ticket_id",
    ),
}


def errors_of(raw: Any, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw, **kwargs)
    return {e["field"]: e["message"] for e in caught.value.errors}


def test_each_event_type_parses_to_its_class() -> None:
    base = {"userId": "u1"}
    assert isinstance(parse_event({**base, "type": "identify", "traits": {"a": 1}}), IdentifyEvent)
    assert isinstance(parse_event({**base, "type": "track", "event": "Clicked"}), TrackEvent)
    assert isinstance(parse_event({**base, "type": "page", "name": "Home"}), PageEvent)
    assert isinstance(parse_event({**base, "type": "screen", "name": "Home"}), ScreenEvent)
    assert isinstance(parse_event({**base, "type": "group", "groupId": "g1"}), GroupEvent)
    alias = parse_event({"type": "alias", "userId": "u1", "previousId": "anon-1"})
    assert isinstance(alias, AliasEvent)
    assert alias.previous_id == "anon-1"


def test_segment_field_names_and_context_are_read() -> None:
    event = parse_event(track("Clicked", {"x": 1}))
    assert event.message_id == "msg-1"
    assert event.user_id == "user-1"
    assert event.anonymous_id == "anon-1"
    assert event.context is not None
    assert event.context["campaign"] == {
        "name": "spring",
        "source": "newsletter",
        "medium": "email",
    }
    assert event.context["userAgent"] == "Mozilla/5.0"
    assert event.context["library"] == {"name": "analytics.js", "version": "next-1.70.0"}


def test_numeric_user_id_is_kept_as_a_string() -> None:
    event = parse_event({"type": "identify", "userId": 12345, "anonymousId": 7})
    assert event.user_id == "12345"
    assert event.anonymous_id == "7"


def test_unknown_keys_are_kept_everywhere() -> None:
    raw = track("Clicked", {"colour": "red"}, version=2, _metadata={"bundled": ["Segment.io"]})
    raw["context"]["device"] = {"type": "mobile"}
    raw["integrations"] = {"All": True}
    dumped = parse_event(raw).model_dump(mode="json", by_alias=True)
    assert dumped["version"] == 2
    assert dumped["_metadata"] == {"bundled": ["Segment.io"]}
    assert dumped["context"]["device"] == {"type": "mobile"}
    assert dumped["properties"] == {"colour": "red"}
    assert dumped["integrations"] == {"All": True}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01 10:00:00.250", datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_timestamps_with_or_without_zone_become_aware_utc(text: str, expected: datetime) -> None:
    event = parse_event({"type": "page", "anonymousId": "a", "timestamp": text, "sentAt": text})
    assert event.timestamp == expected
    assert event.timestamp is not None
    assert event.timestamp.utcoffset() == timedelta(0)
    assert event.sent_at == expected


def test_timestamps_keep_their_instant_across_zones() -> None:
    zone = timezone(timedelta(hours=-5))
    event = parse_event(
        {"type": "page", "anonymousId": "a", "originalTimestamp": datetime(2024, 1, 1, tzinfo=zone)}
    )
    assert event.original_timestamp == datetime(2024, 1, 1, 5, tzinfo=UTC)


def test_absurd_timestamps_are_refused_with_the_range() -> None:
    errors = errors_of({"type": "page", "anonymousId": "a", "sentAt": "1900-01-01T00:00:00Z"})
    assert errors == {"sentAt": "must be between 1970-01-01 and 2100-01-01"}


@pytest.mark.parametrize("field", ["timestamp", "originalTimestamp", "sentAt"])
@pytest.mark.parametrize("value", ["0001-01-01T00:00:01+04:00", "9999-12-31T23:59:59-01:00"])
def test_timestamps_whose_conversion_to_utc_overflows_are_refused_with_the_range(
    field: str, value: str
) -> None:
    errors = errors_of({"type": "page", "anonymousId": "a", field: value})
    assert errors == {field: "must be between 1970-01-01 and 2100-01-01"}


def test_bad_timestamp_names_the_field() -> None:
    errors = errors_of({"type": "page", "anonymousId": "a", "timestamp": "yesterday"})
    assert errors == {"timestamp": "must be an ISO-8601 timestamp"}


def test_user_or_anonymous_id_is_required() -> None:
    assert errors_of({"type": "track", "event": "Clicked"}) == {
        "userId": "userId or anonymousId is required"
    }


def test_empty_ids_count_as_absent() -> None:
    event = parse_event({"type": "track", "event": "Clicked", "userId": "", "anonymousId": "a1"})
    assert event.user_id is None
    assert event.customer_key == "a1"
    assert errors_of({"type": "track", "event": "E", "userId": "", "anonymousId": ""}) == {
        "userId": "userId or anonymousId is required"
    }


def test_alias_needs_previous_id_and_user_id() -> None:
    assert errors_of({"type": "alias", "userId": "u1"}) == {"previousId": "is required"}
    errors = errors_of({"type": "alias", "anonymousId": "a1", "previousId": "a0"})
    assert errors == {"userId": "is required for alias"}


def test_group_needs_group_id() -> None:
    assert errors_of({"type": "group", "userId": "u1"}) == {"groupId": "is required"}


def test_track_needs_an_event_name() -> None:
    assert errors_of({"type": "track", "userId": "u1"}) == {"event": "is required"}
    assert errors_of({"type": "track", "userId": "u1", "event": ""}) == {
        "event": "must not be empty"
    }


def test_too_long_ids_name_the_limit() -> None:
    errors = errors_of(track("Clicked", userId="u" * 257, messageId="m" * 300))
    assert errors == {
        "userId": "must be at most 256 characters",
        "messageId": "must be at most 256 characters",
    }


def test_wrong_types_name_the_field() -> None:
    raw = track("Clicked", properties=["not", "an", "object"], userId={"id": 1})
    raw["context"]["ip"] = 12
    errors = errors_of(raw)
    assert errors == {
        "userId": "must be a string",
        "context.ip": "must be a string",
        "properties": "must be an object",
    }


def test_unknown_or_missing_type_is_refused() -> None:
    expected = {"type": "must be one of: identify, track, page, screen, group, alias"}
    assert errors_of({"type": "tracking", "userId": "u1"}) == expected
    assert errors_of({"userId": "u1"}) == expected


def test_non_object_is_refused() -> None:
    assert errors_of(["a"]) == {"": "must be a JSON object"}


def test_endpoint_type_wins_over_the_body() -> None:
    event = parse_event({"userId": "u1", "event": "Clicked"}, event_type="track")
    assert isinstance(event, TrackEvent)


def test_write_key_is_accepted_but_never_serialised() -> None:
    event = parse_event({"type": "identify", "userId": "u1", "writeKey": "secret"})
    assert event.write_key == "secret"
    assert "writeKey" not in event.model_dump_json()


def test_invalid_event_message_lists_every_field() -> None:
    with pytest.raises(InvalidEvent, match=r"userId: must be at most 256 characters"):
        parse_event({"type": "identify", "userId": "u" * 300})


def test_batch_defaults_fill_only_what_the_event_lacks() -> None:
    body = {"sentAt": "2024-05-01T10:00:05Z", "context": {"ip": "1.2.3.4"}, "batch": []}
    item = {"type": "identify", "userId": "u1", "context": {"ip": "5.6.7.8"}}
    merged = apply_batch_defaults(item, body)
    assert merged["sentAt"] == "2024-05-01T10:00:05Z"
    assert merged["context"] == {"ip": "5.6.7.8"}
    assert "sentAt" not in item  # the input is not mutated
    complete = {**item, "sentAt": "x", "integrations": {}}
    assert apply_batch_defaults(complete, body) is complete


# Typed events


def test_every_typed_event_has_an_example() -> None:
    assert set(TYPED_EXAMPLES) == set(EVENT_PROPERTIES) == set(TYPED_EVENTS)


def test_the_union_knows_every_typed_event() -> None:
    assert set(TYPED_EVENT_CLASSES) <= set(EVENT_CLASSES)
    assert len(set(EVENT_CLASSES)) == len(EVENT_CLASSES) == 6 + len(TYPED_EVENT_CLASSES)


@pytest.mark.parametrize("name", sorted(TYPED_EXAMPLES))
def test_typed_event_valid_example(name: str) -> None:
    valid, _, _ = TYPED_EXAMPLES[name]
    event = parse_event(track(name, valid))
    assert isinstance(event, TYPED_EVENTS[name])
    assert isinstance(event.properties, EVENT_PROPERTIES[name])


@pytest.mark.parametrize("name", sorted(TYPED_EXAMPLES))
def test_typed_event_invalid_example_names_the_field(name: str) -> None:
    _, invalid, field = TYPED_EXAMPLES[name]
    assert field in errors_of(track(name, invalid))


def test_order_completed_properties_are_typed() -> None:
    event = parse_event(order_completed(currency="usd", order_id=991))
    assert isinstance(event, OrderCompletedEvent)
    props = event.properties
    assert props.order_id == "991"
    assert props.currency == "USD"
    assert props.revenue == 25.0
    assert exact(props.total or 0) == Decimal("27.5")
    assert props.products[0].product_id == "507f1f77bcf86cd799439011"
    assert props.products[1].quantity == 2
    assert props.coupon == "hasbros"


def test_order_completed_needs_order_id_amount_currency_and_products() -> None:
    errors = errors_of(track("Order Completed", {}))
    assert errors == {
        "properties.order_id": "is required",
        "properties.currency": "is required",
        "properties.products": "is required",
    }
    props = order_completed()["properties"]
    del props["revenue"], props["total"]
    assert errors_of(track("Order Completed", props)) == {
        "properties.revenue": "revenue or total is required"
    }
    assert parse_event(track("Order Completed", {**props, "total": 0}))


def test_order_completed_limits_name_field_and_limit() -> None:
    raw = order_completed(revenue=-1, currency="dollars", order_id="o" * 257)
    raw["properties"]["products"][1]["price"] = -3
    raw["properties"]["products"][1]["quantity"] = "two"
    assert errors_of(raw) == {
        "properties.order_id": "must be at most 256 characters",
        "properties.revenue": "must be >= 0",
        "properties.currency": "must be a 3-letter ISO 4217 currency code",
        "properties.products[1].price": "must be >= 0",
        "properties.products[1].quantity": "must be an integer",
    }


def test_money_bounds_are_stated() -> None:
    assert errors_of(order_completed(revenue=1e13)) == {
        "properties.revenue": "must be <= 1000000000000"
    }
    assert errors_of(order_completed(total="NaN")) == {
        "properties.total": "must be a finite number"
    }


def test_numeric_strings_are_accepted_as_numbers() -> None:
    event = parse_event(order_completed(revenue="25.10", shipping="3"))
    assert isinstance(event, OrderCompletedEvent)
    assert exact(event.properties.revenue or 0) == Decimal("25.1")


def test_unknown_properties_of_typed_events_are_kept() -> None:
    event = parse_event(order_completed(gift_wrap=True))
    dumped = event.model_dump(mode="json")
    assert dumped["properties"]["gift_wrap"] is True
    assert dumped["properties"]["revenue"] == 25.0


def test_order_refunded_may_be_partial_or_full() -> None:
    full = parse_event(track("Order Refunded", {"order_id": "o1"}))
    assert isinstance(full, OrderRefundedEvent)
    assert full.properties.total is None
    partial = parse_event(track("Order Refunded", {"order_id": "o1", "products": [{"sku": "a"}]}))
    assert isinstance(partial, OrderRefundedEvent)
    assert partial.properties.products is not None


def test_other_event_names_are_generic_track_events() -> None:
    event = parse_event(track("Video Played", {"revenue": -1, "anything": [1, 2]}))
    assert type(event) is TrackEvent
    assert event.properties == {"revenue": -1, "anything": [1, 2]}


def test_typed_names_match_exactly() -> None:
    # Segment names are case-sensitive: a differently cased name is someone else's event.
    assert type(parse_event(track("order completed", {}))) is TrackEvent


def test_typed_event_without_properties_validates_as_empty() -> None:
    event = parse_event(track("Cart Viewed"))
    assert isinstance(event, CartViewedEvent)
    assert event.properties.products is None
