"""Credentials abused on every service: none, empty, malformed, foreign (another
deployment's), revoked or rotated out, expired, a write key on the admin APIs, the admin
token where it does not belong (a query string, a cookie), and notify's signed links altered.
Every one is refused, and no refusal shows a traceback or a path of the server.

Each admin request that would change something is one the admin token gets a 404 or a 422 for
(an unknown customer, a month that does not exist): nothing is done even if a check let it
through, and the real token's answer is told apart from a 401.
"""

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from services.notify.domain.links import ClickLink, LinkSigner, OpenLink, UnsubscribeLink
from services.scoring.dashboard.session import COOKIE, DashboardSessions
from tests.integration.helpers import ADMIN_TOKEN
from tests.integration.hostile import documents
from tests.integration.hostile.conftest import (
    ADMIN,
    LINK_SECRET,
    PREVIOUS_LINK_SECRET,
    REVOKED_LINK_SECRET,
    Stack,
    basic,
)
from tests.integration.hostile.probes import assert_no_internals, assert_ready

pytestmark = pytest.mark.integration

NOBODY = "cus_nobody"
# What each path parameter is in the requests below: what the admin token would get a 404 or
# 422 for, so no request changes anything whatever its credentials.
PARAMETERS = {
    "customer_id": NOBODY,
    "channel": "email",
    "month": "2026-13",
    "journey_id": "no-such-journey",
    "template": "no_such_template",
    "address": "not-an-address",
}
# Tracking can be switched for any customer id, known or not: one longer than any id is a 422.
OVERRIDES = {("PUT", "/v1/customers/{customer_id}/tracking"): {"customer_id": "c" * 65}}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PUT", "/v1/spend/{channel}/{month}"): {"amount": "1", "currency": "EUR"},
    ("POST", "/v1/journeys/{journey_id}/pause"): {"by": "abuse"},
    ("POST", "/v1/templates/{template}/test-send"): {"to": "abuse@example.com"},
    ("PUT", "/v1/customers/{customer_id}/tracking"): {"enabled": False},
    ("PUT", "/v1/suppressions/{address}"): {},
}
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/v1/refit"): {"as_of": "1969-12-31"},  # before 1970: a 422
    ("GET", "/v1/analytics/customers"): {"q": "nobody@example.com"},
}


def _admin_operations(service: str) -> Iterator[tuple[str, str, str]]:
    """(method, path template, path) of every admin operation of `service`'s document."""
    for template, operations in documents.DOCUMENTS[service]()["paths"].items():
        if not template.startswith("/v1/"):
            continue
        for method in operations:
            values = {**PARAMETERS, **OVERRIDES.get((method.upper(), template), {})}
            yield method.upper(), template, template.format(**values)


def latin1(headers: dict[str, str]) -> dict[bytes, bytes]:
    """Headers as a client may send them: any byte, read by the server as Latin-1."""
    return {name.encode(): value.encode("latin-1") for name, value in headers.items()}


def _request(
    url: str,
    method: str,
    template: str,
    path: str,
    headers: dict[str, str],
    params: dict[str, str] | None = None,
) -> httpx.Response:
    body = BODIES.get((method, template))
    with httpx.Client(timeout=30) as client:
        return client.request(
            method,
            f"{url}{path}",
            json=body,
            headers=latin1(headers),
            params={**QUERIES.get((method, template), {}), **(params or {})},
        )


FOREIGN_TOKEN = "another-deployments-admin-token-" + "z" * 32
VARIANTS: dict[str, dict[str, Any]] = {
    "no credentials": {"headers": {}},
    "an empty Authorization header": {"headers": {"Authorization": ""}},
    "the Bearer scheme alone": {"headers": {"Authorization": "Bearer"}},
    "another deployment's admin token": {"headers": {"Authorization": f"Bearer {FOREIGN_TOKEN}"}},
    "the admin token cut short": {"headers": {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"}},
    "the admin token and more": {"headers": {"Authorization": f"Bearer {ADMIN_TOKEN}x"}},
    "the admin token as Basic credentials": {
        "headers": {
            "Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_TOKEN}".encode()).decode()
        }
    },
    "a token that is not ASCII": {"headers": {"Authorization": "Bearer \u00e9\u00ff"}},
    "the admin token in the query string": {
        "params": {
            "token": ADMIN_TOKEN,
            "access_token": ADMIN_TOKEN,
            "admin_token": ADMIN_TOKEN,
            "api_key": ADMIN_TOKEN,
        }
    },
    "the admin token as a cookie": {
        "headers": {"Cookie": f"{COOKIE}={ADMIN_TOKEN}; token={ADMIN_TOKEN}"}
    },
}


def _refusals(stack: Stack, service: str, variant: dict[str, Any]) -> list[str]:
    """What went wrong with `variant` on each admin operation of `service`; [] if all were
    refused with a 401 that shows nothing of the server."""
    url = stack.services()[service].url
    problems = []
    for method, template, path in _admin_operations(service):
        answer = _request(
            url, method, template, path, variant.get("headers", {}), variant.get("params")
        )
        if answer.status_code != 401 or "WWW-Authenticate" not in answer.headers:
            problems.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
        assert_no_internals(answer)
    return problems


@pytest.mark.parametrize("service", ["profile", "scoring", "notify"])
def test_the_admin_token_is_what_gets_past_every_admin_operation(
    stack: Stack, service: str
) -> None:
    """The control: with the admin token no request of the matrix is a 401, and each that
    would change something is a 404 or a 422, so none does."""
    url = stack.services()[service].url
    for method, template, path in _admin_operations(service):
        answer = _request(url, method, template, path, ADMIN)
        assert answer.status_code != 401, f"{method} {path}: {answer.text[:300]}"
        if method != "GET":
            assert answer.status_code in (404, 422), f"{method} {path}: {answer.text[:300]}"


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("service", ["profile", "scoring", "notify"])
async def test_every_admin_operation_refuses_what_is_not_the_admin_token(
    stack: Stack, service: str, variant: str
) -> None:
    assert _refusals(stack, service, VARIANTS[variant]) == []
    await assert_ready(stack.services()[service].url)


@pytest.mark.parametrize("service", ["profile", "scoring", "notify"])
def test_a_write_key_is_no_admin_credential(stack: Stack, service: str) -> None:
    for key in (stack.write_key, stack.revoked_write_key):
        for headers in (basic(key), {"Authorization": f"Bearer {key}"}):
            assert _refusals(stack, service, {"headers": headers}) == []


# --- the dashboard's sessions ---------------------------------------------------------------


def _sessions(token: str) -> DashboardSessions:
    return DashboardSessions(token, timedelta(hours=12))


def _analytics(stack: Stack, cookie: str) -> list[httpx.Response]:
    headers = latin1({"Cookie": f"{COOKIE}={cookie}"})
    with httpx.Client(timeout=30, headers=headers) as client:
        return [
            client.get(f"{stack.scoring.url}/v1/analytics/overview"),
            client.get(f"{stack.scoring.url}/v1/analytics/customers/{NOBODY}"),
            client.get(f"{stack.scoring.url}/", follow_redirects=False),
        ]


def test_a_live_dashboard_session_gets_the_dashboard_and_nothing_more(stack: Stack) -> None:
    live = _sessions(ADMIN_TOKEN).issue(datetime.now(UTC))
    overview, unknown, page = _analytics(stack, live)
    assert (overview.status_code, unknown.status_code, page.status_code) == (200, 404, 200)
    # The session is the dashboard's, not a credential for the admin API.
    with httpx.Client(timeout=30, headers={"Cookie": f"{COOKIE}={live}"}) as client:
        for path in ("/v1/model", "/v1/segments", "/v1/channels", f"/v1/scores/{NOBODY}"):
            assert client.get(f"{stack.scoring.url}{path}").status_code == 401, path


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(
            _sessions(ADMIN_TOKEN).issue(datetime.now(UTC) - timedelta(hours=13)), id="expired"
        ),
        pytest.param(
            _sessions("the-admin-token-before-the-rotation-" + "r" * 32).issue(datetime.now(UTC)),
            id="signed-with-a-rotated-token",
        ),
        pytest.param(_sessions(FOREIGN_TOKEN).issue(datetime.now(UTC)), id="foreign"),
        pytest.param("9999999999." + "0" * 64, id="forged-far-expiry"),
        pytest.param("1.\u00e9", id="not-ascii"),
        pytest.param("\u00b2.abc", id="unicode-digit"),
        pytest.param("", id="empty"),
    ],
)
def test_a_dashboard_session_that_is_not_live_is_refused(stack: Stack, cookie: str) -> None:
    overview, unknown, page = _analytics(stack, cookie)
    for answer in (overview, unknown):
        assert answer.status_code == 401, answer.text[:300]
        assert_no_internals(answer)
    assert page.status_code == 303
    assert page.headers["location"] == "/login"


def test_a_wrong_login_shows_the_login_page_again_and_nothing_else(stack: Stack) -> None:
    with httpx.Client(timeout=30) as client:
        for token in (FOREIGN_TOKEN, "", ADMIN_TOKEN[:-1], "\u00e9" * 40):
            answer = client.post(
                f"{stack.scoring.url}/login", data={"token": token}, follow_redirects=False
            )
            assert answer.status_code == 401
            assert "That is not the admin token." in answer.text
            assert COOKIE not in answer.headers.get("set-cookie", "")
            assert_no_internals(answer)


# --- ingest: write keys where the tracking API's own tests do not send them ------------------


def test_ingest_refuses_keys_that_are_not_a_live_write_key(stack: Stack) -> None:
    url = stack.ingest.url
    event = {"userId": "u-abuse", "event": "Poked"}
    with httpx.Client(timeout=30) as client:
        refused = [
            # The admin token is not a write key.
            client.post(f"{url}/v1/track", json=event, headers=basic(ADMIN_TOKEN)),
            client.post(f"{url}/v1/track", json={**event, "writeKey": ADMIN_TOKEN}),
            # A write key sent as a Bearer token, or in the query string (only the beacon route
            # reads it there), is no write key.
            client.post(
                f"{url}/v1/track",
                json=event,
                headers={"Authorization": f"Bearer {stack.write_key}"},
            ),
            client.post(f"{url}/v1/track", json=event, params={"writeKey": stack.write_key}),
            # A revoked or unknown key on the routes browser SDKs load from.
            client.get(f"{url}/sourceConfig/", params={"writeKey": stack.revoked_write_key}),
            client.get(f"{url}/sourceConfig/", headers=basic("wk_" + "f" * 32)),
            client.get(f"{url}/sourceConfig/"),
            client.post(
                f"{url}/beacon/v1/batch",
                json={"batch": [{"type": "track", **event}]},
                params={"writeKey": stack.revoked_write_key},
            ),
            client.post(
                f"{url}/v1/track",
                json=event,
                headers=latin1({"Authorization": "Basic \u00e9\u00e9"}),
            ),
        ]
        settings = [
            client.get(f"{url}/v1/projects/{quote(key)}/settings")
            for key in (stack.revoked_write_key, "wk_" + "f" * 32, ADMIN_TOKEN)
        ]
    for answer in refused:
        assert answer.status_code == 401, answer.text
        assert_no_internals(answer)
    for answer in settings:
        assert answer.status_code == 404, answer.text
        assert_no_internals(answer)


# --- notify's signed links -------------------------------------------------------------------


def _flip(token: str, at: int) -> str:
    replacement = "B" if token[at] != "B" else "C"
    return token[:at] + replacement + token[at + 1 :]


def _tampered(token: str) -> dict[str, str]:
    return {
        "last character changed": _flip(token, -1),
        "a middle character changed": _flip(token, len(token) // 2),
        "first character changed": _flip(token, 0),
        "cut short": token[:-1],
        "extended": token + "A",
        "padded": token + "==",
        "not base64": token[:-3] + "!!!",
        "far too long": token * 40,
    }


LINK_TARGET = "https://shop.example/p/1"


def _payloads(customer: str, address: str) -> dict[str, OpenLink | ClickLink | UnsubscribeLink]:
    """A link of each kind, by the route that takes it."""
    return {
        "/t/o/": OpenLink("n-abuse", customer),
        "/t/c/": ClickLink("n-abuse", customer, LINK_TARGET),
        "/u/": UnsubscribeLink("n-abuse", customer, address),
    }


def test_notify_follows_only_the_links_it_signed(stack: Stack) -> None:
    address = "tamper-victim@example.com"
    payloads = _payloads(stack.customer_ids[0], address)
    genuine = {route: LinkSigner(LINK_SECRET).sign(p) for route, p in payloads.items()}
    forged: list[tuple[str, str, str]] = []
    for route, token in genuine.items():
        forged += [(route, why, bad) for why, bad in _tampered(token).items()]
        for name, secret in (("rotated-out", REVOKED_LINK_SECRET), ("foreign", FOREIGN_TOKEN)):
            signed = LinkSigner(secret).sign(payloads[route])
            forged.append((route, f"signed with a {name} secret", signed))
    # A token for one purpose on the route of another.
    forged += [
        ("/t/c/", "an open token", genuine["/t/o/"]),
        ("/u/", "a click token", genuine["/t/c/"]),
        ("/t/o/", "an unsubscribe token", genuine["/u/"]),
    ]
    one_click = b"List-Unsubscribe=One-Click"
    form = {"content-type": "application/x-www-form-urlencoded"}
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        for route, why, token in forged:
            for method in ["GET", "POST"] if route == "/u/" else ["GET"]:
                answer = client.request(
                    method, f"{stack.notify.url}{route}{token}", content=one_click, headers=form
                )
                assert answer.status_code == 404, f"{method} {route} {why}: {answer.text[:200]}"
                assert "location" not in answer.headers, why
                assert_no_internals(answer)
        listed = client.get(f"{stack.notify.url}/v1/suppressions", headers=ADMIN).json()
        assert address not in {s["address"] for s in listed["suppressions"]}

        # The control: the genuine links work, and so do links signed before the last
        # rotation (RETAIN_LINK_SECRET_PREVIOUS).
        assert client.get(f"{stack.notify.url}/t/o/{genuine['/t/o/']}").status_code == 200
        assert client.get(f"{stack.notify.url}/u/{genuine['/u/']}").status_code == 200
        before_rotation = LinkSigner(PREVIOUS_LINK_SECRET).sign(payloads["/t/c/"])
        for token in (genuine["/t/c/"], before_rotation):
            clicked = client.get(f"{stack.notify.url}/t/c/{token}")
            assert (clicked.status_code, clicked.headers["location"]) == (302, LINK_TARGET)
        unsubscribed = client.post(
            f"{stack.notify.url}/u/{genuine['/u/']}", content=one_click, headers=form
        )
        assert unsubscribed.status_code == 200
        listed = client.get(f"{stack.notify.url}/v1/suppressions", headers=ADMIN).json()
        assert address in {s["address"] for s in listed["suppressions"]}
