"""The HTTP side of notify's links: the open pixel, click redirects and one-click unsubscribe.

    app.include_router(tracking_router(signer, on_open, on_click, on_unsubscribe,
                                       store_name=settings.store_name))

`tracking_router(signer, on_open, on_click, on_unsubscribe, *, store_name, clock) -> APIRouter`:

- `GET /t/o/{token}`: a 1x1 transparent GIF, never cached; calls `on_open(OpenLink, facts)`;
- `GET /t/c/{token}`: 302 to the URL the token was signed for, and nowhere else; calls
  `on_click(ClickLink, facts)`;
- `GET /u/{token}`: a page asking to confirm, with a button that POSTs; calls nothing;
- `POST /u/{token}`: RFC 8058 one-click (a mailbox provider's button posts
  `List-Unsubscribe=One-Click`) or the page's button: calls
  `on_unsubscribe(UnsubscribeLink, facts)` and answers a short page.

A token that is not ours, was altered, or is for another route answers 404 with a page that
says only that the link is not valid, and calls nothing; why it was refused goes to the debug
log (never the token: it holds a customer id and an address).

The callbacks are async and get the verified payload and `RequestFacts` (time, user agent,
client address). Opens and clicks are best effort: if `on_open` or `on_click` raises, the error
is logged and the GIF or the redirect is still answered (a customer must reach the shop
whatever the bookkeeping does). Unsubscribing is not: if `on_unsubscribe` raises, the answer is
503 with Retry-After, so a mailbox provider's one-click POST is retried and the customer is
told to try again, rather than told they are unsubscribed when they are not.

`tracking_touchpoint(payload, facts, user_id=..., anonymous_id=...)` is the touchpoints.v1
record of an open, click or unsubscribe (Email Opened, Email Link Clicked, Unsubscribed), with
a message id derived from the facts, so publishing it twice is harmless;
`tracking_notification(payload, facts, email)` is its notifications.v1 record (opened,
clicked, unsubscribed), for the email's journey and template, with the same id.
"""

import html
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from schemas.parse import parse_event
from schemas.topics.notifications_v1 import (
    EmailKind,
    NotificationClicked,
    NotificationOpened,
    NotificationUnsubscribed,
)
from schemas.topics.touchpoints_v1 import Touchpoint, stamp
from services.notify.domain.links import (
    ClickLink,
    InvalidLink,
    LinkPayload,
    LinkSigner,
    OpenLink,
    UnsubscribeLink,
    is_redirect_target,
)

log = logging.getLogger(__name__)

# The smallest transparent GIF: 1x1, one transparent colour.
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
TOUCHPOINT_SOURCE = "notify"
"""The source id of the touchpoints notify publishes (profile deduplicates by source and id)."""

_NO_STORE = {"Cache-Control": "no-store, private", "Pragma": "no-cache"}
# Pages: no caching, no referrer (the URL holds the token), nothing loaded from elsewhere.
_PAGE_HEADERS = {
    **_NO_STORE,
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
_TOUCHPOINT_NAMESPACE = UUID("0c5e7b0e-3c1a-5f6e-8f43-7d2f1e9a4b61")
_MAX_USER_AGENT = 1024


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the request says about who followed the link (mail scanners and privacy proxies
    fetch links and images too: the user agent is the best hint)."""

    at: datetime
    user_agent: str | None
    ip: str | None


OnOpen = Callable[[OpenLink, RequestFacts], Awaitable[None]]
OnClick = Callable[[ClickLink, RequestFacts], Awaitable[None]]
OnUnsubscribe = Callable[[UnsubscribeLink, RequestFacts], Awaitable[None]]


def _now() -> datetime:
    return datetime.now(UTC)


_INVALID: dict[int | str, dict[str, Any]] = {
    404: {"description": "Not a valid link (altered, expired secret, or not ours)"}
}


def tracking_router(
    signer: LinkSigner,
    on_open: OnOpen,
    on_click: OnClick,
    on_unsubscribe: OnUnsubscribe,
    *,
    store_name: str = "Retain",
    clock: Callable[[], datetime] = _now,
) -> APIRouter:
    """The routes of notify's email links (see the module docstring)."""
    router = APIRouter(tags=["email links"])

    def facts(request: Request) -> RequestFacts:
        agent = request.headers.get("user-agent")
        return RequestFacts(
            at=clock(),
            user_agent=agent[:_MAX_USER_AGENT] if agent else None,
            ip=request.client.host if request.client else None,
        )

    def invalid(route: str, error: InvalidLink, *, page: bool = True) -> Response:
        log.debug("refused a link on %s: %s", route, error)
        if not page:
            return Response(status_code=404, headers=_NO_STORE)
        return _page(
            store_name,
            "Link not valid",
            "<p>This link is not valid. It may have been shortened or altered on its way.</p>"
            "<p>If you wanted to unsubscribe, use the link at the bottom of any of our emails.</p>",
            status=404,
        )

    @router.get(
        "/t/o/{token}",
        summary="Open pixel: records that an email was opened",
        description="Answers a 1x1 transparent GIF and records the open. Mail clients and "
        "privacy proxies may load it without the reader, or not at all.",
        response_class=Response,
        responses={200: {"content": {"image/gif": {}}}, **_INVALID},
    )
    async def opened(token: str, request: Request) -> Response:
        try:
            link = signer.verify(token, OpenLink)
        except InvalidLink as error:
            return invalid("/t/o", error, page=False)
        try:
            await on_open(link, facts(request))
        except Exception:
            log.exception("recording an email open failed")
        return Response(PIXEL_GIF, media_type="image/gif", headers=_NO_STORE)

    @router.get(
        "/t/c/{token}",
        summary="Click link: records the click and redirects to its target",
        description="Redirects (302) to the URL the link was signed for, never elsewhere, and "
        "records the click.",
        response_class=RedirectResponse,
        status_code=302,
        responses={302: {"description": "To the link's target"}, **_INVALID},
    )
    async def clicked(token: str, request: Request) -> Response:
        try:
            link = signer.verify(token, ClickLink)
        except InvalidLink as error:
            return invalid("/t/c", error)
        if not is_redirect_target(link.url):  # signed, so ours: only a bug could get here
            return invalid("/t/c", InvalidLink("not a redirect target"))
        try:
            await on_click(link, facts(request))
        except Exception:
            log.exception("recording an email click failed")
        return RedirectResponse(link.url, status_code=302, headers=_NO_STORE)

    @router.get(
        "/u/{token}",
        summary="Unsubscribe page: asks to confirm",
        description="A page with a button that unsubscribes (POST to the same URL). A GET "
        "never unsubscribes: mail scanners and link previews fetch links without the reader.",
        response_class=HTMLResponse,
        responses=_INVALID,
    )
    async def confirm(token: str) -> Response:
        # Deliberately no side effect: security scanners (Safe Links, antivirus gateways) and
        # previews GET every link of an email. Only the POST below unsubscribes.
        try:
            link = signer.verify(token, UnsubscribeLink)
        except InvalidLink as error:
            return invalid("/u", error)
        return _page(
            store_name,
            "Unsubscribe",
            f"<p>Stop all emails from {html.escape(store_name)} to "
            f"<strong>{html.escape(_masked(link.email))}</strong>?</p>"
            '<form method="post">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit">Unsubscribe</button>'
            "</form>",
        )

    @router.post(
        "/u/{token}",
        summary="Unsubscribe, at once (RFC 8058 one-click)",
        description="What mailbox providers' unsubscribe buttons POST (body "
        "`List-Unsubscribe=One-Click`), and what the confirmation page's button posts. The "
        "address is unsubscribed before the answer; repeating it changes nothing more.",
        response_class=HTMLResponse,
        responses={
            **_INVALID,
            503: {"description": "Not recorded (storage unavailable): try again"},
        },
    )
    async def unsubscribe(token: str, request: Request) -> Response:
        try:
            link = signer.verify(token, UnsubscribeLink)
        except InvalidLink as error:
            return invalid("/u", error)
        try:
            await on_unsubscribe(link, facts(request))
        except Exception:
            log.exception("recording an unsubscribe failed")
            response = _page(
                store_name,
                "Please try again",
                "<p>We could not record your request just now. Please try again in a minute.</p>",
                status=503,
            )
            response.headers["Retry-After"] = "60"
            return response
        return _page(
            store_name,
            "You are unsubscribed",
            f"<p>You will no longer receive emails from {html.escape(store_name)} "
            f"at <strong>{html.escape(_masked(link.email))}</strong>.</p>",
        )

    return router


def tracking_touchpoint(
    payload: LinkPayload,
    facts: RequestFacts,
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
) -> Touchpoint:
    """The touchpoints.v1 record of an open, click or unsubscribe, for the customer's userId
    (else anonymousId; one is required) as notify's copy of their profile has it.

    Its message id is derived from the notification, the kind and (for opens and clicks) the
    time and URL, so a record published twice counts once; an unsubscribe counts once per
    email however often it is posted. `properties.email_id` is the notification id."""
    properties: dict[str, Any] = {"email_id": payload.notification_id}
    if isinstance(payload, OpenLink):
        name = "Email Opened"
    elif isinstance(payload, ClickLink):
        name = "Email Link Clicked"
        properties["link_url"] = payload.url
    else:
        name = "Unsubscribed"
    context: dict[str, Any] = {}
    if facts.ip:
        context["ip"] = facts.ip[:64]
    if facts.user_agent:
        context["userAgent"] = facts.user_agent[:_MAX_USER_AGENT]
    raw: dict[str, Any] = {
        "type": "track",
        "event": name,
        "messageId": occurrence_id(payload, facts),
        "timestamp": facts.at.isoformat(),
        "properties": properties,
        "context": context,
    }
    if user_id:
        raw["userId"] = user_id
    if anonymous_id:
        raw["anonymousId"] = anonymous_id
    return stamp(parse_event(raw), received_at=facts.at, source_id=TOUCHPOINT_SOURCE)


def occurrence_id(payload: LinkPayload, facts: RequestFacts) -> str:
    """The id of one open, click or unsubscribe, derived from the notification, the kind and
    (for opens and clicks) the time and URL: the same for a record published twice."""
    if isinstance(payload, OpenLink):
        key = f"open|{facts.at.isoformat()}"
    elif isinstance(payload, ClickLink):
        key = f"click|{facts.at.isoformat()}|{payload.url}"
    else:
        key = "unsubscribe"
    return str(uuid5(_TOUCHPOINT_NAMESPACE, f"{payload.notification_id}|{key}"))


@dataclass(frozen=True, slots=True)
class TrackedEmail:
    """What notify's email ledger says of the email a link belongs to."""

    kind: EmailKind
    template: str
    journey: str | None
    trigger_event_id: str | None


def tracking_notification(
    payload: LinkPayload, facts: RequestFacts, email: TrackedEmail
) -> NotificationOpened | NotificationClicked | NotificationUnsubscribed:
    """The notifications.v1 record of an open, click or unsubscribe of `email`; its
    `event_id` is the touchpoint's message id, so the two name one occurrence."""
    common: dict[str, Any] = {
        "notification_id": payload.notification_id,
        "customer_id": payload.customer_id,
        "occurred_at": facts.at,
        "kind": email.kind,
        "template": email.template,
        "journey": email.journey,
        "trigger_event_id": email.trigger_event_id,
        "event_id": occurrence_id(payload, facts),
    }
    if isinstance(payload, OpenLink):
        return NotificationOpened(type="opened", **common)
    if isinstance(payload, ClickLink):
        return NotificationClicked(type="clicked", url=payload.url, **common)
    return NotificationUnsubscribed(type="unsubscribed", **common)


def _masked(email: str) -> str:
    """z•••@example.com: enough for the reader to recognise their address, not to harvest it
    from a forwarded link."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}\u2022\u2022\u2022@{domain}" if local else email


def _page(store_name: str, title: str, body: str, *, status: int = 200) -> HTMLResponse:
    """A small self-contained page; `body` is trusted HTML (callers escape what they insert)."""
    store, heading = html.escape(store_name), html.escape(title)
    document = (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{heading} - {store}</title>"
        "<style>body{margin:0;background:#f4f4f5;font-family:-apple-system,BlinkMacSystemFont,"
        "'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#18181b}"
        "main{max-width:480px;margin:48px auto;padding:32px;background:#fff;border-radius:8px}"
        "h1{font-size:22px;margin:0 0 16px}p{line-height:1.5}"
        "button{font-size:16px;padding:12px 24px;border:0;border-radius:6px;background:#18181b;"
        "color:#fff;cursor:pointer}small{color:#71717a}</style></head>"
        f"<body><main><h1>{heading}</h1>{body}<p><small>{store}</small></p></main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_PAGE_HEADERS)
