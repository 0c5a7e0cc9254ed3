"""A catalogue of bad input, sent to every service as an attacker or a broken client would:
deep nesting, huge numbers, NaN, text that is not UTF-8, oversized ids, far-future days,
compressed bombs, wrong content types, oversized bodies and heads, slow heads and bodies.

Each is answered with a 4xx that names the field, the parameter or the limit (never a 5xx,
never a traceback or a path of the server), and the service is still ready afterwards.
Ingest's own tests (tests/integration/ingest/test_hostile_input.py) cover its nesting, NUL,
expansion, header-size and slow-client cases: here it gets only what they do not.
"""

import asyncio
import gzip
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from services.notify.domain.links import LinkSigner, UnsubscribeLink
from tests.integration.hostile.conftest import (
    ADMIN,
    BODY_TIMEOUT_SECONDS,
    HEADER_TIMEOUT_SECONDS,
    LINK_SECRET,
    Stack,
    basic,
)
from tests.integration.hostile.probes import assert_no_internals, assert_ready, exchange, head

pytestmark = pytest.mark.integration

JSON = {"content-type": "application/json"}
ORDER: dict[str, Any] = {
    "userId": "u-catalogue",
    "event": "Order Completed",
    "properties": {
        "order_id": "o-catalogue",
        "revenue": 10,
        "currency": "EUR",
        "products": [{"product_id": "p-1", "price": 10, "quantity": 1}],
    },
}
# 50 MB of zeros: about 50 KB once compressed.
BOMB = gzip.compress(b"0" * 50_000_000)
TWO_MIB = b" " * (2 * 1024 * 1024)


def nested(levels: int) -> bytes:
    """A JSON object `levels` deep (`{}` is one level)."""
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def json_with(value: dict[str, Any], **raw: bytes) -> bytes:
    """`value` as JSON with the string "RAW:<name>" replaced by the bytes `raw[name]`: for
    what a JSON encoder would never write (NaN, 1e999, bytes that are not UTF-8, depth)."""
    text = orjson.dumps(value)
    for name, replacement in raw.items():
        text = text.replace(orjson.dumps(f"RAW:{name}"), replacement)
    return text


@dataclass(frozen=True)
class Bad:
    """One bad request: what is sent, the status expected and what the answer must name."""

    id: str
    service: str
    method: str
    path: str
    status: int
    says: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: str = "admin"  # "admin", "write_key" or "none"


def _order(**properties: Any) -> dict[str, Any]:
    return {**ORDER, "properties": {**ORDER["properties"], **properties}}


INGEST = [
    Bad(
        "revenue-beyond-a-trillion",
        "ingest",
        "POST",
        "/v1/track",
        400,
        "properties.revenue",
        orjson.dumps(_order(revenue=1e308)),
        JSON,
        "write_key",
    ),
    Bad(
        "revenue-beyond-a-double",
        "ingest",
        "POST",
        "/v1/track",
        400,
        "number is infinity",
        json_with(_order(revenue="RAW:n"), n=b"1e999"),
        JSON,
        "write_key",
    ),
    Bad(
        "integer-of-5000-digits",
        "ingest",
        "POST",
        "/v1/track",
        400,
        "not valid JSON",
        json_with(_order(quantity="RAW:n"), n=b"9" * 5000),
        JSON,
        "write_key",
    ),
    Bad(
        "nan",
        "ingest",
        "POST",
        "/v1/track",
        400,
        "not valid JSON",
        json_with(_order(revenue="RAW:n"), n=b"NaN"),
        JSON,
        "write_key",
    ),
    Bad(
        "not-utf8",
        "ingest",
        "POST",
        "/v1/track",
        400,
        "not valid UTF-8",
        json_with({**ORDER, "userId": "RAW:u"}, u=b'"\xff\xfe"'),
        JSON,
        "write_key",
    ),
    Bad(
        "user-id-of-257",
        "ingest",
        "POST",
        "/v1/track",
        400,
        "userId",
        orjson.dumps({**ORDER, "userId": "u" * 257}),
        JSON,
        "write_key",
    ),
    Bad(
        "message-id-of-257",
        "ingest",
        "POST",
        "/v1/identify",
        400,
        "messageId",
        orjson.dumps({"userId": "u", "messageId": "m" * 257}),
        JSON,
        "write_key",
    ),
    Bad(
        "timestamp-in-2100",
        "ingest",
        "POST",
        "/v1/track",
        400,
        "2100-01-01",
        orjson.dumps({**ORDER, "timestamp": "2100-01-01T00:00:00Z"}),
        JSON,
        "write_key",
    ),
    Bad(
        "timestamp-in-year-9999",
        "ingest",
        "POST",
        "/v1/track",
        400,
        "timestamp",
        orjson.dumps({**ORDER, "timestamp": "9999-12-31T23:59:59Z"}),
        JSON,
        "write_key",
    ),
    Bad(
        "sent-at-in-year-275760",
        "ingest",
        "POST",
        "/v1/track",
        400,
        "sentAt",
        orjson.dumps({**ORDER, "sentAt": "+275760-09-13T00:00:00Z"}),
        JSON,
        "write_key",
    ),
    Bad(
        "gzip-bomb",
        "ingest",
        "POST",
        "/v1/batch",
        413,
        "512000 bytes",
        BOMB,
        {**JSON, "content-encoding": "gzip"},
        "write_key",
    ),
    Bad(
        "brotli",
        "ingest",
        "POST",
        "/v1/track",
        415,
        "Content-Encoding 'br'",
        b"\x0b\x02\x80{}\x03",
        {**JSON, "content-encoding": "br"},
        "write_key",
    ),
    Bad(
        "a-form",
        "ingest",
        "POST",
        "/v1/track",
        400,
        "not valid JSON",
        b"userId=u&event=Poked",
        {"content-type": "application/x-www-form-urlencoded"},
        "write_key",
    ),
    Bad(
        "multipart",
        "ingest",
        "POST",
        "/v1/track",
        400,
        "not valid JSON",
        b'--b\r\nContent-Disposition: form-data; name="userId"\r\n\r\nu\r\n--b--\r\n',
        {"content-type": "multipart/form-data; boundary=b"},
        "write_key",
    ),
]

PROFILE = [
    Bad(
        "limit-of-20-digits",
        "profile",
        "GET",
        "/v1/customers?limit=99999999999999999999",
        422,
        "limit",
    ),
    Bad(
        "revenue-1e400",
        "profile",
        "GET",
        "/v1/customers?min_net_revenue=1e400",
        422,
        "min_net_revenue",
    ),
    Bad(
        "revenue-nan", "profile", "GET", "/v1/customers?min_net_revenue=NaN", 422, "min_net_revenue"
    ),
    Bad("user-id-not-utf8", "profile", "GET", "/v1/customers?user_id=%FF%FE", 422, "user_id"),
    Bad("path-not-utf8", "profile", "GET", "/v1/customers/%FF%FE/export", 422, "path"),
    Bad("customer-id-of-257", "profile", "GET", "/v1/customers/" + "c" * 257, 422, "customer_id"),
    Bad("user-id-of-257", "profile", "GET", "/v1/customers?user_id=" + "u" * 257, 422, "user_id"),
    Bad(
        "updated-since-year-9999",
        "profile",
        "GET",
        "/v1/customers?updated_since=9999-12-31T00:00:00Z",
        422,
        "2100-01-01",
    ),
    Bad(
        "before-2100",
        "profile",
        "GET",
        "/v1/customers/c/timeline?before=2100-01-01T00:00:00Z",
        422,
        "before",
    ),
    Bad(
        "a-compressed-body",
        "profile",
        "DELETE",
        "/v1/customers/c",
        415,
        "Content-Encoding",
        BOMB,
        {"content-encoding": "gzip"},
    ),
]

SPEND = "/v1/spend/paid_search/2026-01"
SCORING = [
    Bad(
        "campaign-65-levels-deep",
        "scoring",
        "PUT",
        SPEND,
        422,
        "64 levels",
        json_with({"amount": "1", "currency": "EUR", "campaign": "RAW:d"}, d=nested(65)),
        JSON,
    ),
    Bad(
        "amount-1e999",
        "scoring",
        "PUT",
        SPEND,
        422,
        "number is infinity",
        json_with({"amount": "RAW:n", "currency": "EUR"}, n=b"1e999"),
        JSON,
    ),
    Bad(
        "amount-of-5000-digits",
        "scoring",
        "PUT",
        SPEND,
        422,
        "not valid JSON",
        json_with({"amount": "RAW:n", "currency": "EUR"}, n=b"9" * 5000),
        JSON,
    ),
    Bad(
        "amount-beyond-a-trillion",
        "scoring",
        "PUT",
        SPEND,
        422,
        "amount",
        orjson.dumps({"amount": "1e13", "currency": "EUR"}),
        JSON,
    ),
    Bad(
        "amount-finer-than-the-table",
        "scoring",
        "PUT",
        SPEND,
        422,
        "decimal places",
        orjson.dumps({"amount": "1E-999999999", "currency": "EUR"}),
        JSON,
    ),
    Bad(
        "amount-nan",
        "scoring",
        "PUT",
        SPEND,
        422,
        "not valid JSON",
        json_with({"amount": "RAW:n", "currency": "EUR"}, n=b"NaN"),
        JSON,
    ),
    Bad(
        "campaign-not-utf8",
        "scoring",
        "PUT",
        SPEND,
        422,
        "UTF-8",
        json_with({"amount": "1", "currency": "EUR", "campaign": "RAW:c"}, c=b'"\xff"'),
        JSON,
    ),
    Bad("search-not-utf8", "scoring", "GET", "/v1/analytics/customers?q=%FF", 422, "q"),
    Bad(
        "timeline-limit-1e30",
        "scoring",
        "GET",
        "/v1/analytics/customers/c/timeline?limit=" + "1" + "0" * 30,
        422,
        "limit",
    ),
    Bad("customer-id-of-65", "scoring", "GET", "/v1/scores/" + "c" * 65, 422, "customer_id"),
    Bad(
        "page-customer-id-of-257",
        "scoring",
        "GET",
        "/v1/analytics/customers/" + "c" * 257,
        422,
        "customer_id",
    ),
    Bad(
        "campaign-of-257",
        "scoring",
        "PUT",
        SPEND,
        422,
        "campaign",
        orjson.dumps({"amount": "1", "currency": "EUR", "campaign": "c" * 257}),
        JSON,
    ),
    Bad("end-in-year-9999", "scoring", "GET", "/v1/analytics/overview?end=9999-12-31", 422, "end"),
    Bad(
        "start-in-year-1",
        "scoring",
        "GET",
        "/v1/analytics/lifecycle?start=0001-01-01",
        422,
        "start",
    ),
    Bad("refit-as-of-2999", "scoring", "POST", "/v1/refit?as_of=2999-01-01", 422, "as_of"),
    Bad(
        "spend-in-2999",
        "scoring",
        "PUT",
        "/v1/spend/paid_search/2999-01",
        422,
        "month",
        orjson.dumps({"amount": "1", "currency": "EUR"}),
        JSON,
    ),
    Bad(
        "gzip-bomb",
        "scoring",
        "PUT",
        SPEND,
        415,
        "Content-Encoding 'gzip'",
        BOMB,
        {**JSON, "content-encoding": "gzip"},
    ),
    Bad(
        "gzip-bomb-at-the-login",
        "scoring",
        "POST",
        "/login",
        415,
        "Content-Encoding",
        BOMB,
        {"content-type": "application/x-www-form-urlencoded", "content-encoding": "gzip"},
        "none",
    ),
    Bad(
        "two-mib-at-the-login",
        "scoring",
        "POST",
        "/login",
        413,
        "1048576 bytes",
        b"token=" + TWO_MIB,
        {"content-type": "application/x-www-form-urlencoded"},
        "none",
    ),
    Bad(
        "json-as-text",
        "scoring",
        "PUT",
        SPEND,
        422,
        "body",
        orjson.dumps({"amount": "1", "currency": "EUR"}),
        {"content-type": "text/plain"},
    ),
    Bad(
        "json-as-a-form",
        "scoring",
        "PUT",
        SPEND,
        422,
        "body",
        b"amount=1&currency=EUR",
        {"content-type": "application/x-www-form-urlencoded"},
    ),
]

TEST_SEND = "/v1/templates/welcome/test-send"
TRACKING = "/v1/customers/c/tracking"
NOTIFY = [
    Bad(
        "trigger-65-levels-deep",
        "notify",
        "POST",
        TEST_SEND,
        422,
        "64 levels",
        json_with({"to": "a@example.com", "trigger": "RAW:d"}, d=nested(65)),
        JSON,
    ),
    Bad(
        "trigger-100000-levels-deep",
        "notify",
        "POST",
        TEST_SEND,
        422,
        "not valid JSON",
        json_with({"to": "a@example.com", "trigger": "RAW:d"}, d=nested(100_000)),
        JSON,
    ),
    Bad(
        "enabled-1e999",
        "notify",
        "PUT",
        TRACKING,
        422,
        "number is infinity",
        json_with({"enabled": "RAW:n"}, n=b"1e999"),
        JSON,
    ),
    Bad(
        "enabled-nan",
        "notify",
        "PUT",
        TRACKING,
        422,
        "not valid JSON",
        json_with({"enabled": "RAW:n"}, n=b"NaN"),
        JSON,
    ),
    Bad("limit-1e30", "notify", "GET", "/v1/suppressions?limit=1" + "0" * 30, 422, "limit"),
    Bad("limit-1e999", "notify", "GET", "/v1/customers/c/notifications?limit=1e999", 422, "limit"),
    Bad(
        "address-not-utf8",
        "notify",
        "POST",
        TEST_SEND,
        422,
        "UTF-8",
        json_with({"to": "RAW:t"}, t=b'"\xff@example.com"'),
        JSON,
    ),
    Bad("cursor-not-utf8", "notify", "GET", "/v1/suppressions?after=%FF", 422, "after"),
    Bad(
        "text-not-utf8",
        "notify",
        "PUT",
        TRACKING,
        422,
        "body",
        b"\xff\xfe",
        {"content-type": "text/plain"},
    ),
    Bad(
        "customer-id-of-65",
        "notify",
        "GET",
        f"/v1/customers/{'c' * 65}/notifications",
        422,
        "customer_id",
    ),
    Bad(
        "address-of-300",
        "notify",
        "PUT",
        f"/v1/suppressions/{'a' * 290}@example.com",
        422,
        "address",
        orjson.dumps({}),
        JSON,
    ),
    Bad(
        "paused-by-201",
        "notify",
        "POST",
        "/v1/journeys/welcome/pause",
        422,
        "by",
        orjson.dumps({"by": "b" * 201}),
        JSON,
    ),
    Bad(
        "address-with-a-control-character",
        "notify",
        "POST",
        TEST_SEND,
        422,
        "to",
        orjson.dumps({"to": "a\x06b@example.com"}),
        JSON,
    ),
    Bad(
        "suppressed-address-with-a-control-character",
        "notify",
        "PUT",
        "/v1/suppressions/a%7Fb@example.com",
        422,
        "address",
        orjson.dumps({}),
        JSON,
    ),
    Bad(
        "test-customer-id-of-65",
        "notify",
        "POST",
        TEST_SEND,
        422,
        "customer_id",
        orjson.dumps({"to": "a@example.com", "customer_id": "c" * 65}),
        JSON,
    ),
    Bad(
        "gzip-bomb",
        "notify",
        "POST",
        TEST_SEND,
        415,
        "Content-Encoding 'gzip'",
        BOMB,
        {**JSON, "content-encoding": "gzip"},
    ),
    Bad("two-mib", "notify", "POST", TEST_SEND, 413, "1048576 bytes", TWO_MIB, JSON),
    Bad(
        "json-as-text",
        "notify",
        "POST",
        TEST_SEND,
        422,
        "body",
        orjson.dumps({"to": "a@example.com"}),
        {"content-type": "text/plain"},
    ),
]


def _headers(bad: Bad, stack: Stack) -> dict[str, str]:
    credentials = {"admin": ADMIN, "write_key": basic(stack.write_key), "none": {}}[bad.auth]
    return {**credentials, **bad.headers}


@pytest.mark.parametrize(
    "bad", INGEST + PROFILE + SCORING + NOTIFY, ids=lambda b: f"{b.service}-{b.id}"
)
async def test_bad_input_is_a_4xx_naming_why_and_the_service_stays_ready(
    stack: Stack, bad: Bad
) -> None:
    service = stack.services()[bad.service]
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.request(
            bad.method, f"{service.url}{bad.path}", content=bad.body, headers=_headers(bad, stack)
        )
    assert answer.status_code == bad.status, answer.text[:500]
    assert bad.says in answer.text, answer.text[:500]
    assert_no_internals(answer)
    await assert_ready(service.url)


async def test_an_address_with_a_control_character_bounces_and_notify_stays_up(
    stack: Stack,
) -> None:
    """An identify's traits.email may hold a control character (ingest and the profile take
    it as an address). The order thank-you notify then sends to it (transactional: no consent
    needed) is a bounce; it was the notify process's end, as the SMTP client raised and the
    sender died with it, again at every restart."""
    user = "hostile-control-character"
    events = [
        {
            "type": "identify",
            "userId": user,
            "messageId": f"{user}-identify",
            "traits": {"email": "control\x06character@example.com"},
        },
        {**_order(order_id=f"{user}-o1"), "type": "track", "userId": user, "messageId": user},
    ]
    async with httpx.AsyncClient(timeout=30) as client:
        sent = await client.post(
            f"{stack.ingest.url}/v1/batch", json={"batch": events}, headers=basic(stack.write_key)
        )
        assert sent.status_code == 200, sent.text
        customer_id = await _customer(client, stack, user)
        thank_you = await _email(client, stack, customer_id, "order_thank_you")
    assert thank_you["status"] == "bounced", thank_you
    assert "not an address an SMTP server can take" in thank_you["detail"]
    await assert_ready(stack.notify.url)


async def _customer(client: httpx.AsyncClient, stack: Stack, user: str) -> str:
    for _ in range(300):
        answer = await client.get(
            f"{stack.profile.url}/v1/customers", params={"user_id": user}, headers=ADMIN
        )
        if answer.status_code == 200 and answer.json()["customers"]:
            customer_id: str = answer.json()["customers"][0]["customer_id"]
            return customer_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"{user} was not folded into a profile in 30 s")


async def _email(
    client: httpx.AsyncClient, stack: Stack, customer_id: str, template: str
) -> dict[str, Any]:
    """The customer's email of `template` once it is no longer pending."""
    for _ in range(300):
        answer = await client.get(
            f"{stack.notify.url}/v1/customers/{customer_id}/notifications", headers=ADMIN
        )
        assert answer.status_code == 200, answer.text
        for email in answer.json()["notifications"]:
            if email["template"] == template and email["status"] not in ("pending", "sending"):
                return dict(email)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {template} email to {customer_id} was decided in 30 s")


# --- the connection: heads and bodies, oversized or slow ------------------------------------


SLOW_BODY = {
    "profile": ("DELETE", "/v1/customers/c", ADMIN),
    "scoring": ("POST", "/login", {"content-type": "application/x-www-form-urlencoded"}),
    "notify": ("POST", "/u/token", {"content-type": "application/x-www-form-urlencoded"}),
}


@pytest.mark.parametrize("service", ["profile", "scoring", "notify"])
async def test_a_head_over_16_kib_is_a_431(stack: Stack, service: str) -> None:
    url = stack.services()[service].url
    at_once = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20_000 + b"\r\n\r\n"
    status, answer = await exchange(url, [at_once])
    assert status == 431, answer[:300]
    assert b"16384 bytes" in answer
    dripped = [b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: "] + [b"a" * 1024] * 40
    status, _ = await exchange(url, dripped, pause=0.005)
    assert status == 431
    await assert_ready(url)


@pytest.mark.parametrize("service", ["profile", "scoring", "notify"])
async def test_a_slow_head_is_cut_off_with_408(stack: Stack, service: str) -> None:
    url = stack.services()[service].url
    status, answer = await exchange(
        url, [b"GET /readyz HTTP/1.1\r\nHost: x\r\n"], read_timeout=HEADER_TIMEOUT_SECONDS + 5
    )
    assert status == 408, answer[:300]
    assert f"request headers not received within {HEADER_TIMEOUT_SECONDS:g} s".encode() in answer
    await assert_ready(url)


@pytest.mark.parametrize("service", ["profile", "scoring", "notify"])
async def test_a_slow_body_is_cut_off_with_408(stack: Stack, service: str) -> None:
    url = stack.services()[service].url
    method, path, headers = SLOW_BODY[service]
    request = head(method, path, headers, content_length=100)
    status, answer = await exchange(
        url, [request, b"List-Unsub"], read_timeout=BODY_TIMEOUT_SECONDS + 5
    )
    assert status == 408, answer[:300]
    assert f"request body not received within {BODY_TIMEOUT_SECONDS:g} s".encode() in answer
    assert_no_internals(answer)
    await assert_ready(url)


async def test_a_slow_one_click_unsubscribe_unsubscribes_no_one(stack: Stack) -> None:
    """The public one-click link, with a real token but a body that never ends: cut off
    before the address is suppressed."""
    address = "slow-one-click@example.com"
    token = LinkSigner(LINK_SECRET).sign(UnsubscribeLink("n-slow", stack.customer_ids[0], address))
    request = head(
        "POST",
        f"/u/{token}",
        {"content-type": "application/x-www-form-urlencoded"},
        content_length=100,
    )
    status, _ = await exchange(
        stack.notify.url, [request, b"List-Unsub"], read_timeout=BODY_TIMEOUT_SECONDS + 5
    )
    assert status == 408
    async with httpx.AsyncClient(timeout=30) as client:
        listed = await client.get(f"{stack.notify.url}/v1/suppressions", headers=ADMIN)
    assert address not in {s["address"] for s in listed.json()["suppressions"]}
