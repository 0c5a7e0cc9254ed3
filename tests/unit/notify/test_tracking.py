"""The links' HTTP routes: a valid link does its one thing and reports it; anything else is a
bare 404 that reports nothing. A GET never unsubscribes; a POST unsubscribes at once."""

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.catalog import PAYLOADS
from schemas.errors import InvalidEvent
from schemas.topics import NOTIFICATIONS
from schemas.topics.touchpoints_v1 import Touchpoint
from services.notify.domain.links import (
    ClickLink,
    LinkPayload,
    LinkSigner,
    OpenLink,
    UnsubscribeLink,
)
from services.notify.tracking import (
    PIXEL_GIF,
    RequestFacts,
    TrackedEmail,
    tracking_notification,
    tracking_router,
    tracking_touchpoint,
)

SIGNER = LinkSigner("tracking test secret " + "t" * 32)
OTHER = LinkSigner("someone else's secret " + "o" * 32)
NOW = datetime(2026, 3, 12, 9, 30, tzinfo=UTC)
NID = "8d0f2b9c-4c3e-5e55-9a5e-6b1f0f7d2a11"
CUSTOMER = "cus_0123456789abcdef01234567"
EMAIL = "zoe.martin@example.com"
TARGET = "https://shop.example.com/products/p-1?utm_source=retain&utm_medium=email#reviews"
AGENT = "Mozilla/5.0 (test)"


@dataclass
class Recorded:
    opens: list[tuple[OpenLink, RequestFacts]] = field(default_factory=list)
    clicks: list[tuple[ClickLink, RequestFacts]] = field(default_factory=list)
    unsubscribes: list[tuple[UnsubscribeLink, RequestFacts]] = field(default_factory=list)
    fail: bool = False

    async def on_open(self, link: OpenLink, facts: RequestFacts) -> None:
        self._maybe_fail()
        self.opens.append((link, facts))

    async def on_click(self, link: ClickLink, facts: RequestFacts) -> None:
        self._maybe_fail()
        self.clicks.append((link, facts))

    async def on_unsubscribe(self, link: UnsubscribeLink, facts: RequestFacts) -> None:
        self._maybe_fail()
        self.unsubscribes.append((link, facts))

    def _maybe_fail(self) -> None:
        if self.fail:
            raise ConnectionError("the database is away")

    @property
    def calls(self) -> int:
        return len(self.opens) + len(self.clicks) + len(self.unsubscribes)


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
async def client(recorded: Recorded) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(
        tracking_router(
            SIGNER,
            recorded.on_open,
            recorded.on_click,
            recorded.on_unsubscribe,
            store_name="Maison <Verte>",
            clock=lambda: NOW,
        )
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4321))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://notify.example.com", headers={"User-Agent": AGENT}
    ) as http:
        yield http


FACTS = RequestFacts(at=NOW, user_agent=AGENT, ip="203.0.113.7")


# ---------------------------------------------------------------- what a valid link does


async def test_the_open_pixel(client: httpx.AsyncClient, recorded: Recorded) -> None:
    answer = await client.get(f"/t/o/{SIGNER.open_token(NID, CUSTOMER)}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    assert answer.content == PIXEL_GIF
    assert answer.content.startswith(b"GIF89a\x01\x00\x01\x00")
    assert "no-store" in answer.headers["cache-control"]
    assert recorded.opens == [(OpenLink(NID, CUSTOMER), FACTS)]


async def test_a_click_redirects_to_the_signed_url_only(
    client: httpx.AsyncClient, recorded: Recorded
) -> None:
    answer = await client.get(f"/t/c/{SIGNER.click_token(NID, CUSTOMER, TARGET)}")
    assert answer.status_code == 302
    assert answer.headers["location"] == TARGET
    assert "no-store" in answer.headers["cache-control"]
    assert recorded.clicks == [(ClickLink(NID, CUSTOMER, TARGET), FACTS)]


async def test_a_query_string_cannot_steer_the_redirect(
    client: httpx.AsyncClient, recorded: Recorded
) -> None:
    token = SIGNER.click_token(NID, CUSTOMER, TARGET)
    answer = await client.get(f"/t/c/{token}", params={"url": "https://evil.test/"})
    assert answer.headers["location"] == TARGET


async def test_the_unsubscribe_page_does_not_unsubscribe(
    client: httpx.AsyncClient, recorded: Recorded
) -> None:
    answer = await client.get(f"/u/{SIGNER.unsubscribe_token(NID, CUSTOMER, EMAIL)}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert '<form method="post">' in page
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page
    assert "z\u2022\u2022\u2022@example.com" in page  # masked
    assert EMAIL not in page
    assert "Maison &lt;Verte&gt;" in page  # escaped
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert recorded.calls == 0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("List-Unsubscribe=One-Click", "application/x-www-form-urlencoded"),
        (
            '--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
            "One-Click\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
        ),
        ("", "application/x-www-form-urlencoded"),
    ],
    ids=["rfc8058-urlencoded", "rfc8058-multipart", "empty"],
)
async def test_a_post_unsubscribes_at_once(
    client: httpx.AsyncClient, recorded: Recorded, body: str, content_type: str
) -> None:
    token = SIGNER.unsubscribe_token(NID, CUSTOMER, EMAIL)
    answer = await client.post(f"/u/{token}", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == 200
    assert "You are unsubscribed" in answer.text
    assert recorded.unsubscribes == [(UnsubscribeLink(NID, CUSTOMER, EMAIL), FACTS)]


async def test_the_pages_button_posts_what_rfc_8058_posts(
    client: httpx.AsyncClient, recorded: Recorded
) -> None:
    url = f"/u/{SIGNER.unsubscribe_token(NID, CUSTOMER, EMAIL)}"
    page = (await client.get(url)).text
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    answer = await client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert len(recorded.unsubscribes) == 1


# ---------------------------------------------------------------- failures of the callbacks


async def test_opens_and_clicks_answer_even_when_recording_fails(
    client: httpx.AsyncClient, recorded: Recorded, caplog: pytest.LogCaptureFixture
) -> None:
    recorded.fail = True
    with caplog.at_level(logging.ERROR, logger="services.notify.tracking"):
        pixel = await client.get(f"/t/o/{SIGNER.open_token(NID, CUSTOMER)}")
        click = await client.get(f"/t/c/{SIGNER.click_token(NID, CUSTOMER, TARGET)}")
    assert pixel.status_code == 200
    assert pixel.content == PIXEL_GIF
    assert click.status_code == 302
    assert click.headers["location"] == TARGET
    assert [r.message for r in caplog.records] == [
        "recording an email open failed",
        "recording an email click failed",
    ]


async def test_an_unsubscribe_that_cannot_be_recorded_says_so(
    client: httpx.AsyncClient, recorded: Recorded
) -> None:
    recorded.fail = True
    token = SIGNER.unsubscribe_token(NID, CUSTOMER, EMAIL)
    answer = await client.post(f"/u/{token}", content="List-Unsubscribe=One-Click")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "60"
    assert "try again" in answer.text
    assert "unsubscribed" not in answer.text.lower()


# ---------------------------------------------------------------- links that are not ours


def _altered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


def _bad_tokens() -> list[tuple[str, str, str]]:
    """(method, path, why) for every route and every way a link can be wrong."""
    opened = SIGNER.open_token(NID, CUSTOMER)
    click = SIGNER.click_token(NID, CUSTOMER, TARGET)
    unsubscribe = SIGNER.unsubscribe_token(NID, CUSTOMER, EMAIL)
    cases = []
    for method, prefix, good, purpose_mismatch in [
        ("GET", "/t/o/", opened, click),
        ("GET", "/t/c/", click, opened),
        ("GET", "/u/", unsubscribe, opened),
        ("POST", "/u/", unsubscribe, click),
    ]:
        foreign = {
            "/t/o/": OTHER.open_token(NID, CUSTOMER),
            "/t/c/": OTHER.click_token(NID, CUSTOMER, "https://evil.test/"),
            "/u/": OTHER.unsubscribe_token(NID, CUSTOMER, EMAIL),
        }[prefix]
        for why, token in [
            ("altered", _altered(good)),
            ("truncated", good[:-2]),
            ("extended", good + "AA"),
            ("foreign", foreign),
            ("another purpose", purpose_mismatch),
            ("garbage", "not-a-token"),
            ("too long", "A" * 5000),
        ]:
            cases.append((method, prefix + token, why))
    return cases


@pytest.mark.parametrize(("method", "path", "why"), _bad_tokens())
async def test_links_that_are_not_ours_are_404_and_change_nothing(
    client: httpx.AsyncClient, recorded: Recorded, method: str, path: str, why: str
) -> None:
    answer = await client.request(method, path, content="List-Unsubscribe=One-Click")
    assert answer.status_code == 404, why
    assert "location" not in answer.headers
    assert "signature" not in answer.text  # no detail of why
    assert path.rsplit("/", 1)[1][:20] not in answer.text
    assert recorded.calls == 0


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(["/t/o/", "/t/c/", "/u/"]),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1
    ),
)
async def test_random_tokens_are_refused(
    client: httpx.AsyncClient, recorded: Recorded, prefix: str, token: str
) -> None:
    answer = await client.get(prefix + token)
    assert answer.status_code == 404
    assert recorded.calls == 0


async def test_a_head_request_records_no_click(
    client: httpx.AsyncClient, recorded: Recorded
) -> None:
    await client.head(f"/t/c/{SIGNER.click_token(NID, CUSTOMER, TARGET)}")
    await client.head(f"/u/{SIGNER.unsubscribe_token(NID, CUSTOMER, EMAIL)}")
    assert recorded.calls == 0


async def test_the_routes_are_in_openapi(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths["/t/c/{token}"]) == {"get"}
    assert set(paths["/t/o/{token}"]) == {"get"}
    assert set(paths["/u/{token}"]) == {"get", "post"}
    assert "302" in paths["/t/c/{token}"]["get"]["responses"]
    assert "404" in paths["/u/{token}"]["post"]["responses"]
    assert "503" in paths["/u/{token}"]["post"]["responses"]


# ---------------------------------------------------------------- touchpoints


@pytest.mark.parametrize(
    ("payload", "event", "properties"),
    [
        (OpenLink(NID, CUSTOMER), "Email Opened", {"email_id": NID}),
        (
            ClickLink(NID, CUSTOMER, TARGET),
            "Email Link Clicked",
            {"email_id": NID, "link_url": TARGET},
        ),
        (UnsubscribeLink(NID, CUSTOMER, EMAIL), "Unsubscribed", {"email_id": NID}),
    ],
)
def test_each_link_becomes_a_touchpoint(
    payload: LinkPayload, event: str, properties: dict[str, str]
) -> None:
    touchpoint = tracking_touchpoint(payload, FACTS, user_id="u-42")
    assert Touchpoint.from_json(touchpoint.to_json()) == touchpoint  # a valid touchpoints.v1
    assert touchpoint.customer_key == "u-42"
    assert touchpoint.source_id == "notify"
    assert touchpoint.timestamp == NOW
    dumped = touchpoint.event.model_dump(mode="json", exclude_none=True)
    assert dumped["event"] == event
    assert dumped["properties"] == properties
    assert dumped["context"] == {"ip": "203.0.113.7", "userAgent": AGENT}
    # Published twice, counted once.
    assert tracking_touchpoint(payload, FACTS, user_id="u-42").message_id == touchpoint.message_id


def test_opens_at_other_times_are_other_touchpoints_but_unsubscribes_are_one() -> None:
    later = RequestFacts(at=NOW.replace(minute=31), user_agent=None, ip=None)
    opened = OpenLink(NID, CUSTOMER)
    assert (
        tracking_touchpoint(opened, FACTS, user_id="u").message_id
        != tracking_touchpoint(opened, later, user_id="u").message_id
    )
    unsubscribed = UnsubscribeLink(NID, CUSTOMER, EMAIL)
    assert (
        tracking_touchpoint(unsubscribed, FACTS, anonymous_id="a").message_id
        == tracking_touchpoint(unsubscribed, later, anonymous_id="a").message_id
    )


def test_a_touchpoint_needs_an_identity() -> None:
    with pytest.raises(InvalidEvent):
        tracking_touchpoint(OpenLink(NID, CUSTOMER), FACTS)


@pytest.mark.parametrize(
    ("payload", "kind", "extra"),
    [
        (OpenLink(NID, CUSTOMER), "opened", {}),
        (ClickLink(NID, CUSTOMER, TARGET), "clicked", {"url": TARGET}),
        (UnsubscribeLink(NID, CUSTOMER, EMAIL), "unsubscribed", {}),
    ],
)
def test_each_link_becomes_a_notification_of_its_email(
    payload: LinkPayload, kind: str, extra: dict[str, str]
) -> None:
    email = TrackedEmail("marketing", "welcome_1", "welcome", "trigger-1")
    record = tracking_notification(payload, FACTS, email)
    wire = record.model_dump(mode="json", exclude_none=True)
    assert PAYLOADS[NOTIFICATIONS].adapter.validate_json(record.model_dump_json()) == record
    assert wire == {
        "type": kind,
        "notification_id": NID,
        "customer_id": CUSTOMER,
        "occurred_at": "2026-03-12T09:30:00Z",
        "channel": "email",
        "kind": "marketing",
        "template": "welcome_1",
        "journey": "welcome",
        "trigger_event_id": "trigger-1",
        # The touchpoint's message id: one occurrence, one id on both topics.
        "event_id": str(tracking_touchpoint(payload, FACTS, user_id="u").message_id),
        **extra,
    }
    assert tracking_notification(payload, FACTS, email) == record  # published twice: one id
