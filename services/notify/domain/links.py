"""Signed links in notify's emails: the open pixel, click redirects and one-click unsubscribe.

A link carries its facts (which email, which customer, where a click goes, which address to
unsubscribe) in a token that the server can check without a database: anyone can read it, no
one without the secret can make or alter one.

    signer = LinkSigner(secret, previous=(old_secret,))
    token = signer.sign(ClickLink(notification_id, customer_id, "https://shop.example/p/1"))
    signer.verify(token, ClickLink)        # -> ClickLink(...); InvalidLink if not ours
    urls = LinkUrls(signer, "https://notify.shop.example")
    urls.click_url(notification_id, customer_id, target)   # .../t/c/TOKEN

The token (URL-safe base64, no padding) is

    version (1 byte) | purpose and flags (1) | fields | MAC (16 bytes)

- fields: the notification id (16 bytes when it is a canonical UUID, as the engine's ids
  are, else length-prefixed UTF-8), the customer id, then the target URL (click) or the email
  address (unsubscribe), each length-prefixed UTF-8;
- MAC: HMAC-SHA256 over everything before it, truncated to 128 bits (RFC 2104 section 5), with a
  key derived from the secret for this use only. The purpose is inside the MAC, so an open token
  is not a click token, and a click token's URL cannot be swapped; any altered byte, a token
  from another secret, a truncated or extended token, or a non-canonical encoding is refused.
  MACs are compared with `hmac.compare_digest` (constant time), and nothing in a token is
  parsed before its MAC checks.

No expiry. RFC 8058 unsubscribe links must keep working as long as the email sits in an inbox,
and a product link clicked months later should still reach the product; a link is good for as
long as its secret is. To rotate the secret, set the new one and keep the old as `previous`
(RETAIN_LINK_SECRET_PREVIOUS) until the emails sent with it no longer matter: both verify, only
the new one signs.

Anyone holding a link can read its fields: the customer id and, in an unsubscribe link, the
address. A link goes only in the email sent to that address, to the person it names.

A typical token is 60 to 130 characters; a click token is about 1.4 times its URL longer. Tokens
over `MAX_TOKEN_LENGTH` are neither made nor read (URLs up to about 2,900 bytes fit).
"""

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit
from uuid import UUID

OPEN_PATH = "/t/o/"
CLICK_PATH = "/t/c/"
UNSUBSCRIBE_PATH = "/u/"

MAX_TOKEN_LENGTH = 4096
MAX_ID_LENGTH = 256
MAX_EMAIL_LENGTH = 254
MAX_URL_LENGTH = 2048

_VERSION = 1
_MAC_BYTES = 16
_UUID_FLAG = 0x80
_PURPOSE_MASK = 0x0F
_OPEN, _CLICK, _UNSUBSCRIBE = 1, 2, 3
_KEY_LABEL = b"retain/notify/links/v1"
_UNSAFE_IN_URL = re.compile(r"[\s\x00-\x1f\x7f]")


class InvalidLink(ValueError):
    """A token that is not one of ours, was altered, or is for another purpose. Its message is
    for logs only: a client gets a bare 4xx."""


@dataclass(frozen=True, slots=True)
class OpenLink:
    """The open pixel of one email."""

    notification_id: str
    customer_id: str


@dataclass(frozen=True, slots=True)
class ClickLink:
    """A link in one email, redirecting to `url` and nowhere else."""

    notification_id: str
    customer_id: str
    url: str


@dataclass(frozen=True, slots=True)
class UnsubscribeLink:
    """Unsubscribe `email` (the address the email was sent to)."""

    notification_id: str
    customer_id: str
    email: str


LinkPayload = OpenLink | ClickLink | UnsubscribeLink
P = TypeVar("P", bound=LinkPayload)

_PURPOSES: dict[type[LinkPayload], int] = {
    OpenLink: _OPEN,
    ClickLink: _CLICK,
    UnsubscribeLink: _UNSUBSCRIBE,
}


class LinkSigner:
    """Makes and checks link tokens with HMAC-SHA256 under a server secret.

    `previous` secrets only verify (rotation); `secret` signs and verifies.
    """

    __slots__ = ("_keys",)

    def __init__(self, secret: str | bytes, *, previous: Iterable[str | bytes] = ()) -> None:
        secrets = [secret, *previous]
        if any(not s for s in secrets):
            raise ValueError("a link secret must not be empty")
        self._keys = tuple(_derive(s) for s in secrets)

    def sign(self, payload: LinkPayload) -> str:
        """The token of `payload`; ValueError when a field cannot go in a link."""
        body = _encode(payload)
        token = _b64(body + _mac(self._keys[0], body))
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError(f"a link token is at most {MAX_TOKEN_LENGTH} characters")
        return token

    def verify(self, token: str, purpose: type[P]) -> P:
        """The payload of a token of this purpose; InvalidLink for anything else."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
            raise InvalidLink("empty or too long")
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise InvalidLink("not URL-safe base64") from None
        if _b64(raw) != token:  # e.g. changed padding bits: another text, the same bytes
            raise InvalidLink("not in canonical form")
        if len(raw) < 2 + _MAC_BYTES:
            raise InvalidLink("too short")
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        valid = False
        for key in self._keys:  # every key, so the time does not say which one matched
            valid |= hmac.compare_digest(mac, _mac(key, body))
        if not valid:
            raise InvalidLink("bad signature")
        payload = _decode(body)
        if not isinstance(payload, purpose):
            raise InvalidLink(f"a {type(payload).__name__} token, not a {purpose.__name__}")
        return payload

    # Shorthands for the three purposes.

    def open_token(self, notification_id: str, customer_id: str) -> str:
        return self.sign(OpenLink(notification_id, customer_id))

    def click_token(self, notification_id: str, customer_id: str, url: str) -> str:
        return self.sign(ClickLink(notification_id, customer_id, url))

    def unsubscribe_token(self, notification_id: str, customer_id: str, email: str) -> str:
        return self.sign(UnsubscribeLink(notification_id, customer_id, email))


@dataclass(frozen=True, slots=True)
class LinkUrls:
    """Absolute URLs of the signed links, under notify's public base URL (RETAIN_PUBLIC_URL)."""

    signer: LinkSigner
    base_url: str

    def open_url(self, notification_id: str, customer_id: str) -> str:
        return self._url(OPEN_PATH, self.signer.open_token(notification_id, customer_id))

    def click_url(self, notification_id: str, customer_id: str, url: str) -> str:
        return self._url(CLICK_PATH, self.signer.click_token(notification_id, customer_id, url))

    def unsubscribe_url(self, notification_id: str, customer_id: str, email: str) -> str:
        token = self.signer.unsubscribe_token(notification_id, customer_id, email)
        return self._url(UNSUBSCRIBE_PATH, token)

    def _url(self, path: str, token: str) -> str:
        return f"{self.base_url.rstrip('/')}{path}{token}"


def is_redirect_target(url: str) -> bool:
    """An absolute http(s) URL with a host, no whitespace or control character: what a click
    link may lead to (never javascript:, data: or a relative path)."""
    if not url or len(url) > MAX_URL_LENGTH or _UNSAFE_IN_URL.search(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and bool(parts.hostname)


# ---------------------------------------------------------------- encoding


def _derive(secret: str | bytes) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, _KEY_LABEL, hashlib.sha256).digest()


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _encode(payload: LinkPayload) -> bytes:
    purpose = _PURPOSES[type(payload)]
    _check_id("notification id", payload.notification_id)
    _check_id("customer id", payload.customer_id)
    out = bytearray((_VERSION, 0))
    uuid = _canonical_uuid(payload.notification_id)
    if uuid is not None:
        out[1] = purpose | _UUID_FLAG
        out += uuid
    else:
        out[1] = purpose
        _put(out, payload.notification_id)
    _put(out, payload.customer_id)
    if isinstance(payload, ClickLink):
        if not is_redirect_target(payload.url):
            raise ValueError(f"a click link leads to an absolute http(s) URL, not {payload.url!r}")
        _put(out, payload.url)
    elif isinstance(payload, UnsubscribeLink):
        email = payload.email
        if not 3 <= len(email) <= MAX_EMAIL_LENGTH or "@" not in email:
            raise ValueError(f"not an email address: {email!r}")
        _put(out, email)
    return bytes(out)


def _decode(body: bytes) -> LinkPayload:
    """A body whose MAC checked: ours, so malformed means a bug or a leaked key."""
    try:
        if body[0] != _VERSION:
            raise InvalidLink(f"unknown version {body[0]}")
        purpose, flags = body[1] & _PURPOSE_MASK, body[1] & ~_PURPOSE_MASK
        at = 2
        if flags == _UUID_FLAG:
            notification_id, at = str(UUID(bytes=body[at : at + 16])), at + 16
        elif flags == 0:
            notification_id, at = _get(body, at)
        else:
            raise InvalidLink("unknown flags")
        customer_id, at = _get(body, at)
        payload: LinkPayload
        if purpose == _OPEN:
            payload = OpenLink(notification_id, customer_id)
        elif purpose == _CLICK:
            url, at = _get(body, at)
            payload = ClickLink(notification_id, customer_id, url)
        elif purpose == _UNSUBSCRIBE:
            email, at = _get(body, at)
            payload = UnsubscribeLink(notification_id, customer_id, email)
        else:
            raise InvalidLink(f"unknown purpose {purpose}")
        if at != len(body):
            raise InvalidLink("trailing bytes")
        return payload
    except (IndexError, ValueError) as error:
        if isinstance(error, InvalidLink):
            raise
        raise InvalidLink("malformed") from None


def _check_id(what: str, value: str) -> None:
    if not value or len(value) > MAX_ID_LENGTH:
        raise ValueError(f"a {what} has 1 to {MAX_ID_LENGTH} characters")


def _canonical_uuid(value: str) -> bytes | None:
    try:
        uuid = UUID(value)
    except ValueError:
        return None
    return uuid.bytes if str(uuid) == value else None


def _put(out: bytearray, text: str) -> None:
    raw = text.encode("utf-8")
    length = len(raw)
    if length < 0x80:
        out.append(length)
    elif length < 0x4000:
        out += bytes((0x80 | (length >> 7), length & 0x7F))
    else:
        raise ValueError("a link field is at most 16383 bytes")
    out += raw


def _get(body: bytes, at: int) -> tuple[str, int]:
    length = body[at]
    at += 1
    if length & 0x80:
        length = ((length & 0x7F) << 7) | body[at]
        at += 1
    end = at + length
    if end > len(body):
        raise InvalidLink("truncated")
    return body[at:end].decode("utf-8"), end
