"""Signed links: what is signed verifies to the same facts; anything altered, foreign or for
another purpose is refused; a click token leads only to the URL it was made for."""

import base64
import string
import uuid

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.notify.domain.links import (
    CLICK_PATH,
    MAX_TOKEN_LENGTH,
    OPEN_PATH,
    UNSUBSCRIBE_PATH,
    ClickLink,
    InvalidLink,
    LinkPayload,
    LinkSigner,
    LinkUrls,
    OpenLink,
    UnsubscribeLink,
    is_redirect_target,
)

SECRET = "s" * 40
SIGNER = LinkSigner(SECRET)
B64URL = string.ascii_letters + string.digits + "-_"
PURPOSES: tuple[type[LinkPayload], ...] = (OpenLink, ClickLink, UnsubscribeLink)

ids = st.one_of(
    st.uuids().map(str),  # the engine's notification ids: packed into 16 bytes
    st.text(min_size=1, max_size=64),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=256),
)
emails = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.text(alphabet=string.ascii_letters + string.digits + ".+_-é", min_size=1, max_size=40),
    st.text(alphabet=string.ascii_lowercase + ".", min_size=1, max_size=30),
)
urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https"]),
    st.text(alphabet=string.ascii_lowercase + string.digits + ".-", min_size=1, max_size=40).filter(
        lambda h: h.strip(".-") == h
    ),
    st.text(
        alphabet=string.ascii_letters + string.digits + "/?&=%#._~-+ä", min_size=0, max_size=300
    ),
)


@st.composite
def payloads(draw: st.DrawFn) -> LinkPayload:
    nid, cid = draw(ids), draw(ids)
    kind = draw(st.sampled_from(PURPOSES))
    if kind is OpenLink:
        return OpenLink(nid, cid)
    if kind is ClickLink:
        return ClickLink(nid, cid, draw(urls))
    return UnsubscribeLink(nid, cid, draw(emails))


def _sign(payload: LinkPayload) -> str:
    try:
        return SIGNER.sign(payload)
    except ValueError:
        assume(False)  # a field a link cannot carry (e.g. a lone surrogate)
        raise


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@given(payloads())
def test_what_is_signed_verifies_to_the_same_facts(payload: LinkPayload) -> None:
    token = _sign(payload)
    assert len(token) <= MAX_TOKEN_LENGTH
    assert set(token) <= set(B64URL)  # goes into a URL path as is
    assert SIGNER.verify(token, type(payload)) == payload
    # Another signer with the same secret (another process) agrees.
    assert LinkSigner(SECRET).verify(token, type(payload)) == payload


@given(payloads(), st.data())
def test_any_altered_character_is_refused(payload: LinkPayload, data: st.DataObject) -> None:
    token = _sign(payload)
    at = data.draw(st.integers(0, len(token) - 1))
    other = data.draw(st.sampled_from(B64URL).filter(lambda ch: ch != token[at]))
    altered = token[:at] + other + token[at + 1 :]
    with pytest.raises(InvalidLink):
        SIGNER.verify(altered, type(payload))


@given(payloads(), st.data())
def test_any_altered_byte_is_refused(payload: LinkPayload, data: st.DataObject) -> None:
    raw = bytearray(_raw(_sign(payload)))
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    with pytest.raises(InvalidLink):
        SIGNER.verify(_text(bytes(raw)), type(payload))


@given(payloads(), st.data())
def test_truncated_or_extended_tokens_are_refused(
    payload: LinkPayload, data: st.DataObject
) -> None:
    token = _sign(payload)
    cut = data.draw(st.integers(0, len(token) - 1))
    extra = data.draw(st.text(alphabet=B64URL, min_size=1, max_size=8))
    for bad in (token[:cut], token + extra, extra + token):
        with pytest.raises(InvalidLink):
            SIGNER.verify(bad, type(payload))


@given(payloads())
def test_a_token_for_one_purpose_is_refused_for_another(payload: LinkPayload) -> None:
    token = _sign(payload)
    for purpose in PURPOSES:
        if purpose is not type(payload):
            with pytest.raises(InvalidLink):
                SIGNER.verify(token, purpose)


@given(payloads())
def test_a_token_from_another_secret_is_refused(payload: LinkPayload) -> None:
    token = LinkSigner("another secret, " + "x" * 32).sign(payload)
    with pytest.raises(InvalidLink):
        SIGNER.verify(token, type(payload))


@given(ids, ids, urls, urls)
def test_a_click_tokens_url_cannot_be_swapped(nid: str, cid: str, url: str, other: str) -> None:
    assume(url != other)
    token = _sign(ClickLink(nid, cid, url))
    forged = _sign(ClickLink(nid, cid, other))
    # The body of one with the MAC of the other, either way round.
    body, mac = _raw(token)[:-16], _raw(token)[-16:]
    other_body, other_mac = _raw(forged)[:-16], _raw(forged)[-16:]
    for bad in (_text(body + other_mac), _text(other_body + mac)):
        with pytest.raises(InvalidLink):
            SIGNER.verify(bad, ClickLink)
    assert SIGNER.verify(token, ClickLink).url == url


def test_the_purpose_is_bound_even_for_the_same_fields() -> None:
    nid, cid = str(uuid.uuid4()), "cus_1"
    opened = SIGNER.open_token(nid, cid)
    raw = bytearray(_raw(opened))
    raw[1] = (raw[1] & 0xF0) | 3  # relabel it an unsubscribe token: the MAC no longer holds
    with pytest.raises(InvalidLink):
        SIGNER.verify(_text(bytes(raw)), UnsubscribeLink)


@pytest.mark.parametrize(
    "garbage",
    ["", "a", "====", "not base64!", "ÿÿÿÿ", "a" * (MAX_TOKEN_LENGTH + 1), "AAAA" * 10, "%2F"],
)
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidLink):
        SIGNER.verify(garbage, OpenLink)


def test_a_non_canonical_encoding_of_a_valid_token_is_refused() -> None:
    token = SIGNER.open_token(str(uuid.uuid4()), "cus_1")
    assume_len = len(token) % 4
    assert assume_len in (2, 3)  # 34 bytes: the last character has spare bits
    last = B64URL.index(token[-1])
    spare = 0b1111 if assume_len == 2 else 0b11
    twin = token[:-1] + B64URL[last ^ 1] if last & spare == 0 else token
    assert _raw(twin) == _raw(token)
    if twin != token:
        with pytest.raises(InvalidLink):
            SIGNER.verify(twin, OpenLink)
    with pytest.raises(InvalidLink):
        SIGNER.verify(token + "==", OpenLink)  # padded


def test_rotation_keeps_the_previous_secrets_links_working() -> None:
    old = LinkSigner("old secret " + "o" * 32)
    token = old.unsubscribe_token(str(uuid.uuid4()), "cus_1", "ann@example.com")
    rotated = LinkSigner("new secret " + "n" * 32, previous=["old secret " + "o" * 32])
    assert rotated.verify(token, UnsubscribeLink).email == "ann@example.com"
    # New links are signed with the new secret only.
    fresh = rotated.open_token("n-1", "cus_1")
    assert LinkSigner("new secret " + "n" * 32).verify(fresh, OpenLink) == OpenLink("n-1", "cus_1")
    with pytest.raises(InvalidLink):
        old.verify(fresh, OpenLink)
    # Once the old secret is dropped, its links stop working.
    with pytest.raises(InvalidLink):
        LinkSigner("new secret " + "n" * 32).verify(token, UnsubscribeLink)


def test_tokens_are_compact() -> None:
    nid = str(uuid.uuid5(uuid.NAMESPACE_URL, "n"))
    cid = "cus_" + "0123456789abcdef01234567"
    assert len(SIGNER.open_token(nid, cid)) <= 90
    assert len(SIGNER.unsubscribe_token(nid, cid, "zoe.customer@example.com")) <= 125
    url = "https://shop.example.com/products/p-123?utm_source=retain&utm_medium=email"
    assert len(SIGNER.click_token(nid, cid, url)) <= 90 + len(url) * 4 // 3


@pytest.mark.parametrize(
    "bad",
    [
        "javascript:alert(1)",
        "/relative",
        "data:text/html,x",
        "https://",
        "ftp://x.test/",
        "http://a b",
    ],
)
def test_click_links_lead_only_to_absolute_http_urls(bad: str) -> None:
    assert not is_redirect_target(bad)
    with pytest.raises(ValueError, match="absolute http"):
        SIGNER.click_token("n-1", "cus_1", bad)


@pytest.mark.parametrize(
    ("nid", "cid", "email"),
    [("", "c", "a@b.c"), ("n", "", "a@b.c"), ("n" * 257, "c", "a@b.c"), ("n", "c", "nobody")],
)
def test_fields_a_link_cannot_carry_are_refused_when_signing(
    nid: str, cid: str, email: str
) -> None:
    with pytest.raises(ValueError, match=r"has 1 to 256 characters|not an email address"):
        SIGNER.unsubscribe_token(nid, cid, email)


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        LinkSigner("")
    with pytest.raises(ValueError, match="empty"):
        LinkSigner("x" * 40, previous=[""])


def test_link_urls_put_tokens_under_the_public_base() -> None:
    urls = LinkUrls(SIGNER, "https://notify.shop.example/")
    nid, cid = str(uuid.uuid4()), "cus_1"
    opened = urls.open_url(nid, cid)
    assert opened.startswith("https://notify.shop.example" + OPEN_PATH)
    assert SIGNER.verify(opened.rsplit("/", 1)[1], OpenLink) == OpenLink(nid, cid)
    click = urls.click_url(nid, cid, "https://shop.example/p/1")
    assert click.startswith("https://notify.shop.example" + CLICK_PATH)
    assert SIGNER.verify(click.rsplit("/", 1)[1], ClickLink).url == "https://shop.example/p/1"
    unsubscribe = urls.unsubscribe_url(nid, cid, "ann@example.com")
    assert unsubscribe.startswith("https://notify.shop.example" + UNSUBSCRIBE_PATH)
