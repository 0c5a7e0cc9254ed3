"""Touchpoint.from_json decodes as Touchpoint.model_validate_json does: the same models or the
same error, for every touchpoint ingest can publish and for anything else a topic may hold."""

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import SchemaValidator

from bench.profile.events import generate, touchpoint
from schemas import (
    EVENT_PROPERTIES,
    TYPED_EVENTS,
    AliasEvent,
    GroupEvent,
    IdentifyEvent,
    OrderCompletedEvent,
    PageEvent,
    Product,
    ScreenEvent,
    Touchpoint,
    TrackEvent,
    parse_event,
    stamp,
)
from schemas._types import UtcDatetime
from schemas.parse import _fast_validate, _validate
from schemas.topics._touchpoint_decode import _UTC_DATETIME, fast_validator
from schemas.topics.touchpoints_v1 import _fast_validate_json

# Comparing


def assert_same(a: Any, b: Any, path: str = "touchpoint") -> None:
    """Equal, and the same all the way down: classes, fields set, extras, key order, tzinfo."""
    assert type(a) is type(b), path
    if isinstance(a, BaseModel):
        assert a == b, path
        assert a.model_fields_set == b.model_fields_set, path
        for name in type(a).model_fields:
            assert_same(getattr(a, name), getattr(b, name), f"{path}.{name}")
        assert_same(a.__pydantic_extra__, b.__pydantic_extra__, f"{path}.<extra>")
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            assert_same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{index}]")
    elif isinstance(a, datetime):
        assert a == b, path
        assert a.tzinfo is b.tzinfo, path
    elif isinstance(a, float):
        assert repr(a) == repr(b), path  # tells 0.0 from -0.0
    else:
        assert a == b, path


def error_view(error: ValidationError) -> tuple[Any, ...]:
    """What a dead letter can show of an error: title, message and each error's details."""
    return error.title, str(error), error.errors(include_url=False, include_context=False)


def outcome(decode: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "decoded", decode(raw)
    except ValidationError as error:
        return "error", error_view(error)


def assert_decodes_alike(raw: bytes) -> None:
    """from_json gives what model_validate_json gives: an equal model, or the same error."""
    before = outcome(Touchpoint.model_validate_json, raw)
    after = outcome(Touchpoint.from_json, raw)
    assert after[0] == before[0], raw
    if before[0] == "decoded":
        assert_same(after[1], before[1])
    else:
        assert after[1] == before[1]


# Generated events: every type and every typed track event, as SDKs send them


def text(*, min_size: int = 0, max_size: int) -> st.SearchStrategy[str]:
    """Any text but NUL, which the contract refuses in every string (schemas.parse)."""
    return st.text(_NO_NUL, min_size=min_size, max_size=max_size)


_NO_NUL = st.characters(codec="utf-8", exclude_characters="\x00")
ids = text(min_size=1, max_size=24) | st.integers(min_value=0, max_value=10**12)
texts = text(max_size=40) | st.integers(min_value=-1000, max_value=10**6)
urls = text(max_size=80)
amounts = st.floats(min_value=0, max_value=1e9, allow_nan=False) | st.integers(0, 10**6)
counts = st.integers(min_value=0, max_value=1_000_000)
ratings = st.floats(min_value=0, max_value=5) | st.integers(0, 5)
currencies = st.from_regex(r"[A-Za-z]{3}", fullmatch=True)
emails = st.from_regex(r"[a-z0-9._+-]{1,12}@[a-z0-9.-]{1,12}", fullmatch=True)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
# Unknown keys are kept (prefixed so they never collide with a named field).
extras = st.dictionaries(text(max_size=10).map(lambda k: "x_" + k), json_values, max_size=3)

_ID_FIELDS = [
    *("product_id", "sku", "cart_id", "order_id", "checkout_id", "coupon_id", "referral_code"),
    *("email_id", "campaign_id", "link_id", "list_id", "referrer_id", "review_id", "ticket_id"),
]
_TEXT_FIELDS = [
    *("category", "name", "brand", "variant", "coupon", "affiliation", "coupon_name", "type"),
    *("first_name", "last_name", "username", "phone", "title", "email_subject"),
    *("campaign_name", "list_name", "subject", "channel", "priority", "resolution"),
]


def _product() -> st.SearchStrategy[dict[str, Any]]:
    optional = {name: PROPERTY_VALUES[name] for name in Product.model_fields}
    return st.fixed_dictionaries({}, optional=optional).flatmap(
        lambda d: extras.map(lambda x: {**d, **x})
    )


PROPERTY_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **dict.fromkeys(_ID_FIELDS, ids),
    **dict.fromkeys(_TEXT_FIELDS, texts),
    **dict.fromkeys(("url", "image_url", "link_url"), urls),
    **dict.fromkeys(
        ("price", "value", "total", "subtotal", "revenue", "shipping", "tax", "discount"), amounts
    ),
    **dict.fromkeys(("quantity", "position"), counts),
    **dict.fromkeys(("rating", "satisfaction"), ratings),
    "currency": currencies,
    "email": emails,
    "review_body": text(max_size=200),
}
PROPERTY_VALUES["products"] = st.deferred(lambda: st.lists(_product(), max_size=3))


def test_the_generated_properties_cover_every_typed_field() -> None:
    models: list[type[BaseModel]] = [Product, *EVENT_PROPERTIES.values()]
    for model in models:
        assert set(model.model_fields) <= set(PROPERTY_VALUES), model.__name__


def typed_properties(name: str) -> st.SearchStrategy[dict[str, Any]]:
    model = EVENT_PROPERTIES[name]
    required = {
        f: PROPERTY_VALUES[f] for f, info in model.model_fields.items() if info.is_required()
    }
    if name == "Order Completed":
        required["total"] = amounts  # revenue or total is required
    optional = {f: PROPERTY_VALUES[f] for f in model.model_fields if f not in required}
    return st.fixed_dictionaries(required, optional=optional).flatmap(
        lambda d: extras.map(lambda x: {**d, **x})
    )


def instants(lo: int = 1971, hi: int = 2098) -> st.SearchStrategy[datetime]:
    return st.datetimes(min_value=datetime(lo, 1, 1), max_value=datetime(hi, 12, 31))


zones = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)


@st.composite
def client_times(draw: st.DrawFn) -> Any:
    """A client time as SDKs send it: any offset, zone-less, with or without microseconds."""
    when = draw(instants()).replace(tzinfo=draw(zones))
    form = draw(st.sampled_from(["iso", "z", "unix"]))
    if form == "unix":
        return int(when.replace(tzinfo=when.tzinfo or UTC).timestamp())
    text = when.isoformat()
    return text.replace("+00:00", "Z") if form == "z" else text


contexts = st.fixed_dictionaries(
    {},
    optional={
        "campaign": st.fixed_dictionaries(
            {}, optional=dict.fromkeys(("name", "source", "medium", "term", "content"), texts)
        ),
        "page": st.fixed_dictionaries(
            {},
            optional={**dict.fromkeys(("path", "referrer", "search", "url"), urls), "title": texts},
        ),
        "referrer": st.fixed_dictionaries({}, optional={"type": texts, "id": texts, "url": urls}),
        "library": st.fixed_dictionaries({}, optional={"name": texts, "version": texts}),
        "ip": text(max_size=40),
        "userAgent": urls,
        "locale": st.sampled_from(["en-GB", "de-DE", "fr"]),
        "timezone": st.sampled_from(["Europe/London", "America/New_York"]),
        "app": json_values,
        "device": json_values,
    },
)

CLASSES: dict[str, type[BaseModel]] = {
    "identify": IdentifyEvent,
    "page": PageEvent,
    "screen": ScreenEvent,
    "group": GroupEvent,
    "alias": AliasEvent,
    "track": TrackEvent,
    **TYPED_EVENTS,
}
KINDS = list(CLASSES)


@st.composite
def raw_events(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    raw: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "messageId": ids,
                "timestamp": client_times(),
                "originalTimestamp": client_times(),
                "sentAt": client_times(),
                "context": contexts,
                "integrations": st.dictionaries(text(max_size=8), st.booleans(), max_size=2),
            },
        )
    )
    # Who: userId, anonymousId or both; an empty one counts as absent.
    who = draw(st.sampled_from(["user", "anon", "both", "user+empty", "empty+anon"]))
    user = draw(ids)
    anon = draw(ids)
    if kind == "alias" and who in ("anon", "empty+anon"):
        who = "both"
    if who in ("user", "both", "user+empty"):
        raw["userId"] = user
    if who in ("anon", "both", "empty+anon"):
        raw["anonymousId"] = anon
    if who == "user+empty":
        raw["anonymousId"] = ""
    if who == "empty+anon":
        raw["userId"] = ""
    if kind in ("identify", "group"):
        raw["type"] = kind
        if draw(st.booleans()):
            raw["traits"] = draw(
                st.dictionaries(text(max_size=10), json_values, max_size=4)
                | st.fixed_dictionaries({"email": emails, "accepts_marketing": st.booleans()})
            )
        if kind == "group":
            raw["groupId"] = draw(ids)
    elif kind in ("page", "screen"):
        raw["type"] = kind
        raw |= draw(st.fixed_dictionaries({}, optional={"name": texts, "category": texts}))
        if draw(st.booleans()):
            raw["properties"] = draw(st.dictionaries(text(max_size=10), json_values, max_size=4))
    elif kind == "alias":
        raw["type"] = "alias"
        raw["previousId"] = draw(ids)
    elif kind == "track":
        raw["type"] = "track"
        raw["event"] = draw(text(min_size=1, max_size=40).filter(lambda n: n not in TYPED_EVENTS))
        if draw(st.booleans()):
            raw["properties"] = draw(st.dictionaries(text(max_size=10), json_values, max_size=4))
    else:
        raw["type"] = "track"
        raw["event"] = kind
        raw["properties"] = draw(typed_properties(kind))
    return raw


received_times = instants(2000, 2090).map(lambda t: t.replace(tzinfo=UTC))


def published(raw: dict[str, Any], received_at: datetime) -> bytes:
    """The touchpoints.v1 value ingest publishes for `raw`."""
    return stamp(parse_event(raw), received_at=received_at, source_id="src_1").to_json()


# Every touchpoint ingest can publish takes the fast validator and decodes alike


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_published_touchpoint_decodes_alike_on_the_fast_path(
    kind: str, data: st.DataObject
) -> None:
    raw = published(data.draw(raw_events(kind)), data.draw(received_times))
    before = Touchpoint.model_validate_json(raw)
    fast = _fast_validate_json()(raw)  # no fallback: the value ingest writes is accepted as is
    assert_same(fast, before)
    assert_same(Touchpoint.from_json(raw), before)
    assert type(before.event) is CLASSES[kind]


def test_realistic_touchpoints_decode_alike() -> None:
    # The profile benchmark's traffic: pages with campaign context, identifies with traits,
    # product views and cart adds, orders with products.
    traffic = generate(600, 60, seed=3)
    received_at = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    kinds = set()
    for raw in traffic.events:
        value = touchpoint(raw, received_at).to_json()
        decoded = Touchpoint.from_json(value)
        assert_same(decoded, Touchpoint.model_validate_json(value))
        assert_same(_fast_validate_json()(value), decoded)
        kinds.add(type(decoded.event).__name__)
    assert kinds == {
        "PageEvent",
        "IdentifyEvent",
        "ProductViewedEvent",
        "ProductAddedEvent",
        "OrderCompletedEvent",
    }
    order = next(
        Touchpoint.from_json(touchpoint(raw, received_at).to_json())
        for raw in traffic.events
        if raw.get("event") == "Order Completed"
    )
    assert isinstance(order.event, OrderCompletedEvent)
    assert order.event.properties.products
    assert order.received_at.tzinfo is UTC
    assert order.timestamp.tzinfo is UTC
    assert order.event.timestamp is not None
    assert order.event.timestamp.tzinfo is UTC


# Events as clients send them: parse_event's fast validator accepts them and validates alike, or
# refuses them and the contract's validator answers


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_client_events_validate_alike_on_parse_events_fast_path(
    kind: str, data: st.DataObject
) -> None:
    raw = data.draw(raw_events(kind))
    contract = _validate(raw)
    try:
        fast = _fast_validate()(raw)
    except ValidationError:
        pass  # an offset or zone-less time, a Unix time: the contract's validator answers
    else:
        assert_same(fast, contract, "event")
    assert_same(parse_event(raw), contract, "event")


def test_parse_events_fast_path_takes_what_analytics_js_sends() -> None:
    raw = {
        "type": "track",
        "event": "Order Completed",
        "anonymousId": "a-1",
        "timestamp": "2026-05-04T12:00:00.123Z",
        "sentAt": "2026-05-04T12:00:00.243Z",
        "properties": {
            "order_id": "o-1",
            "total": 10.5,
            "currency": "GBP",
            "products": [{"price": 10.5}],
        },
    }
    assert_same(_fast_validate()(raw), _validate(raw), "event")


# Values written some other way: valid, but not in ingest's form; they take the full path


_TIME_KEYS = ("receivedAt", "timestamp", "originalTimestamp", "sentAt")


def _rewrite_times(tree: dict[str, Any], zone: timezone | None) -> dict[str, Any]:
    """The value with its datetimes at another offset (`zone`), or zone-less (None)."""

    def moved(node: dict[str, Any]) -> dict[str, Any]:
        out = dict(node)
        for key in _TIME_KEYS:
            if isinstance(out.get(key), str):
                when = datetime.fromisoformat(out[key])
                out[key] = (
                    when.astimezone(zone) if zone else when.replace(tzinfo=None)
                ).isoformat()
        return out

    return {**moved(tree), "event": moved(tree["event"])}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    data=st.data(),
    zone=st.sampled_from([None, timezone(timedelta(hours=3)), timezone(timedelta(0))]),
)
def test_other_encodings_of_a_touchpoint_decode_alike(
    kind: str, data: st.DataObject, zone: timezone | None
) -> None:
    raw = published(data.draw(raw_events(kind)), data.draw(received_times))
    tree = orjson.loads(raw)
    touchpoint = Touchpoint.model_validate_json(raw)
    for other in (
        orjson.dumps(_rewrite_times(tree, zone)),  # another offset, or zone-less
        touchpoint.model_dump_json().encode(),  # nulls written out
        json.dumps(tree, indent=1, ensure_ascii=True).encode(),  # whitespace, escapes
    ):
        assert_decodes_alike(other)


def test_a_value_in_another_form_takes_the_full_path() -> None:
    page = {"type": "page", "anonymousId": "a1", "name": "Home", "timestamp": "2024-05-01T11:59Z"}
    raw = published(page, datetime(2024, 5, 1, 12, tzinfo=UTC))
    other = raw.replace(b'"receivedAt":"2024-05-01T12:00:00Z"', b'"receivedAt":1714564800')
    assert other != raw
    with pytest.raises(ValidationError):
        _fast_validate_json()(other)
    assert_same(Touchpoint.from_json(other), Touchpoint.from_json(raw))


# Garbage still raises, with the contract's own error


GARBAGE = [
    b"",
    b"not json",
    b'{"messageId": "m1"',
    b"null",
    b"[]",
    b"42",
    b"{}",
    b'"a string"',
    b"\xff\xfe",
    b'{"messageId":"m1","customerKey":"c","sourceId":"s","receivedAt":"2024-05-01T12:00:00Z",'
    b'"timestamp":"2024-05-01T12:00:00Z"}',
]


def _touchpoint_with(event: dict[str, Any], **head: Any) -> bytes:
    return json.dumps(
        {
            "messageId": "m1",
            "customerKey": "c1",
            "sourceId": "s",
            "receivedAt": "2024-05-01T12:00:00Z",
            "timestamp": "2024-05-01T11:59:00Z",
            "event": event,
            **head,
        }
    ).encode()


NOT_TOUCHPOINTS = [
    _touchpoint_with({"type": "x", "userId": "c1"}),
    _touchpoint_with({"type": "track", "userId": "c1"}),  # no event name
    _touchpoint_with({"type": "track", "event": 5, "userId": "c1"}),
    _touchpoint_with({"type": "page"}),  # neither userId nor anonymousId
    _touchpoint_with({"type": "page", "userId": "", "anonymousId": ""}),
    _touchpoint_with({"type": "alias", "anonymousId": "a1", "previousId": "p"}),
    _touchpoint_with({"type": "page", "userId": "c1", "timestamp": "yesterday"}),
    _touchpoint_with({"type": "page", "userId": "c1", "timestamp": "2026-02-30T00:00:00Z"}),
    _touchpoint_with({"type": "page", "userId": "c1", "timestamp": "2100-01-01T00:00:00Z"}),
    _touchpoint_with({"type": "page", "userId": "c1", "context": "ctx"}),
    _touchpoint_with({"type": "identify", "userId": "c1", "traits": []}),
    # A typed name whose properties break its model is never read as a generic track event.
    _touchpoint_with({"type": "track", "event": "Order Completed", "userId": "c1"}),
    _touchpoint_with(
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "c1",
            "properties": {"order_id": "o1", "currency": "GBP", "products": []},
        }
    ),
    _touchpoint_with(
        {"type": "track", "event": "Product Viewed", "userId": "c1", "properties": {"price": -1}}
    ),
    _touchpoint_with(
        {"type": "track", "event": "Product Added", "userId": "c1", "properties": {"price": "x"}}
    ),
    _touchpoint_with({"type": "page", "userId": "c1"}, receivedAt="1969-12-31T23:59:59Z"),
    _touchpoint_with({"type": "page", "userId": "c1"}, customerKey=""),
    _touchpoint_with({"type": "page", "userId": "c1"}, timestamp=None),
    _touchpoint_with({"type": "page", "userId": "c1"}, messageId="m" * 257),
]


@pytest.mark.parametrize("raw", GARBAGE + NOT_TOUCHPOINTS)
def test_garbage_raises_the_contracts_error(raw: bytes) -> None:
    with pytest.raises(ValidationError) as error:
        Touchpoint.from_json(raw)
    with pytest.raises(ValidationError) as expected:
        Touchpoint.model_validate_json(raw)
    assert error_view(error.value) == error_view(expected.value)
    assert error.value.__context__ is None  # not chained to the fast validator's refusal


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_decode_alike(raw: bytes) -> None:
    assert_decodes_alike(raw)


# Damaged touchpoints: whatever one change does, both decode it alike

_KEYS = [
    "type",
    "event",
    "userId",
    "anonymousId",
    "messageId",
    "previousId",
    "groupId",
    "timestamp",
    "receivedAt",
    "sentAt",
    "properties",
    "products",
    "price",
    "currency",
    "order_id",
    "context",
    "campaign",
    "traits",
]
_ODD_VALUES: st.SearchStrategy[Any] = st.sampled_from(
    [
        "",
        "track",
        "page",
        "alias",
        *TYPED_EVENTS,
        "2026-04-01T04:13:15Z",
        "2026-04-01T04:13:15.5Z",
        "2026-04-01T04:13:15+00:00",
        "2026-04-01T04:13:15-00:00",
        "2026-04-01T06:13:15+02:00",
        "2026-04-01T04:13:15",
        "2026-04-01 04:13:15Z",
        "2026-04-01t04:13:15z",
        "2026-04-01T04:13Z",
        "2026-04-01T24:00:00Z",
        "2026-04-01T23:59:60Z",
        "2026-02-29T00:00:00Z",
        "2024-02-29T00:00:00Z",
        "2026-04-01T04:13:15.1234567Z",
        "1969-12-31T23:59:59.999999Z",
        "1970-01-01T00:00:00Z",
        "2099-12-31T23:59:59.999999Z",
        "2100-01-01T00:00:00Z",
        "\u0662\u0660\u0662\u0666-04-01T04:13:15Z",  # Arabic-Indic digits
        1714564800,
        1714564800.5,
        -1,
        "GBP",
        "gbp",
        "EURO",
        "a@b",
        [],
        {},
        None,
        True,
    ]
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*path, index))
    return out


def _parent(tree: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        tree = tree[part]
    return tree


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(KINDS))
    tree = orjson.loads(published(draw(raw_events(kind)), draw(received_times)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(tree)[1:]))
        parent = _parent(tree, path)
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(_ODD_VALUES | json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(_KEYS))] = draw(_ODD_VALUES | json_values)
        if not _paths(tree)[1:]:
            break
    return json.dumps(tree).encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_touchpoints_decode_alike(raw: bytes) -> None:
    assert_decodes_alike(raw)


# The pieces of the fast validator


def test_the_fast_validator_rewrites_the_union_and_every_datetime() -> None:
    # If pydantic lays its schemas out differently one day, the rewrite finds nothing to do and
    # decoding is only as fast as before: this test says so.
    _, done = fast_validator(Touchpoint)
    assert done["union"] == 1
    assert done["datetime"] >= 5  # receivedAt, timestamp and the event's four, per class


_contract_datetime = TypeAdapter(UtcDatetime)
_fast_datetime = SchemaValidator(_UTC_DATETIME)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)))
def test_a_datetime_as_ingest_writes_it_reads_as_the_contract_reads_it(when: datetime) -> None:
    for text in (
        orjson.dumps(when.replace(tzinfo=UTC), option=orjson.OPT_UTC_Z),
        TypeAdapter(datetime).dump_json(when.replace(tzinfo=UTC)),
    ):
        fast = _fast_datetime.validate_json(text)
        assert fast == _contract_datetime.validate_json(text)
        assert fast.tzinfo is UTC


def test_the_datetime_form_refuses_what_the_contract_refuses() -> None:
    # Every field at and beyond its bounds: the fast form accepts a value only if the contract
    # does, and then reads the same datetime.
    texts = [
        f"{year}-{month:02d}-{day:02d}T00:00:00Z"
        for year in (1970, 2023, 2024, 2099)
        for month in range(14)
        for day in (0, 1, 28, 29, 30, 31, 32)
    ]
    texts += [f"2026-04-01T{h:02d}:00:00Z" for h in range(100)]
    texts += [f"2026-04-01T00:{m:02d}:00Z" for m in range(100)]
    texts += [f"2026-12-31T23:59:{s:02d}Z" for s in range(100)]
    texts += [f"2026-04-01T00:00:00.{f}Z" for f in ("0", "5", "050", "123456", "999999")]
    for text in texts:
        raw = json.dumps(text)
        try:
            expected = _contract_datetime.validate_json(raw)
        except ValidationError:
            with pytest.raises(ValidationError):
                _fast_datetime.validate_json(raw)
            continue
        got = _fast_datetime.validate_json(raw)
        assert got == expected, text
        assert got.tzinfo is UTC
