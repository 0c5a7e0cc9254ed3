"""Email content: every template the shipped journeys send renders, for a customer notify knows
well and for one it knows almost nothing about; the headers a mailbox provider needs; links and
the open pixel signed when tracking is on and absent when off; HTML escaped, headers unbroken."""

import email
import re
import shutil
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from jinja2 import TemplateNotFound, UndefinedError

from services.notify.domain import Recipient, Send
from services.notify.domain.links import (
    CLICK_PATH,
    OPEN_PATH,
    UNSUBSCRIBE_PATH,
    ClickLink,
    LinkSigner,
    OpenLink,
    UnsubscribeLink,
)
from services.notify.email import (
    compose,
    flatten,
    format_money,
    message_id_for,
    template_context,
    template_problems,
)
from services.notify.journeys import load
from services.notify.settings import SHIPPED_TEMPLATES, NotifySettings
from tests.unit.notify.email_factory import (
    EMAIL,
    NOW,
    bare_recipient,
    journey_sends,
    profile,
    realistic_recipient,
    scores,
    settings,
)

SETTINGS = settings()
SIGNER = SETTINGS.link_signer()
TEMPLATES = load().templates()  # every template id the shipped journeys use -> kind
PUBLIC = "https://notify.example.com"


def _compose(
    send: Send,
    recipient: Recipient | None = None,
    *,
    tracking: bool = True,
    config: NotifySettings = SETTINGS,
) -> EmailMessage:
    return compose(
        send,
        recipient or realistic_recipient(),
        signer=config.link_signer(),
        settings=config,
        tracking=tracking,
        now=NOW,
    )


def _parts(message: EmailMessage) -> tuple[str, str]:
    """Text and HTML as a mail client reads them from the wire."""
    parsed = email.message_from_bytes(flatten(message), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"] or "")
        if tag == "img" and values.get("src"):
            self.images.append(values["src"] or "")


def _links(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def _token(url: str, path: str) -> str:
    assert url.startswith(PUBLIC + path), url
    return url.removeprefix(PUBLIC + path)


# ---------------------------------------------------------------- every shipped template


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("tracking", [True, False], ids=["tracked", "untracked"])
def test_every_shipped_template_renders_for_a_known_customer(template: str, tracking: bool) -> None:
    send = journey_sends(rich=True)[template]
    assert send.kind == TEMPLATES[template]
    message = _compose(send, tracking=tracking)
    text, html = _parts(message)
    subject = str(message["Subject"])

    assert subject.strip() == subject
    assert "\n" not in subject
    assert 10 <= len(subject) <= 120
    for part in (subject, text, html):
        assert "None" not in part  # a missing value printed as Python's None
        assert "{{" not in part
        assert "{%" not in part
    assert "Zoë" in html  # the customer's first name
    assert "Zoë" in text
    assert "Maison Verte" in text
    assert "Maison Verte" in html
    _check_links(send, message, text, html, tracked=tracking)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_shipped_template_renders_for_a_customer_known_by_address_only(
    template: str,
) -> None:
    send = journey_sends(rich=False)[template]
    message = _compose(send, bare_recipient())
    text, html = _parts(message)
    subject = str(message["Subject"])
    assert len(subject) >= 10
    for part in (subject, text, html):
        assert "None" not in part
    assert "Hi there," in text
    assert "Hi there," in html
    assert str(message["To"]) == EMAIL  # no name to show
    _check_links(send, message, text, html, tracked=True)


def _check_links(send: Send, message: EmailMessage, text: str, html: str, *, tracked: bool) -> None:
    marketing = send.kind == "marketing"
    links = _links(html)
    assert links.hrefs, "every email links to the shop"
    unsubscribe = [href for href in links.hrefs if href.startswith(PUBLIC + UNSUBSCRIBE_PATH)]
    if marketing:
        # RFC 8058 headers, and the same link visible in both parts.
        [header_url] = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert unsubscribe
        assert set(unsubscribe) == {header_url}
        assert header_url in text
        token = SIGNER.verify(_token(header_url, UNSUBSCRIBE_PATH), UnsubscribeLink)
        assert token == UnsubscribeLink(send.notification_id, send.customer_id, send.to)
    else:
        assert message["List-Unsubscribe"] is None
        assert message["List-Unsubscribe-Post"] is None
        assert not unsubscribe
    others = [href for href in links.hrefs if href not in unsubscribe]
    if tracked:
        # Every other link is a signed click link to a page of the shop.
        for href in others:
            click = SIGNER.verify(_token(href, CLICK_PATH), ClickLink)
            assert (click.notification_id, click.customer_id) == (
                send.notification_id,
                send.customer_id,
            )
            assert click.url.startswith("https://shop.example.com")
        [pixel] = links.images
        assert SIGNER.verify(_token(pixel, OPEN_PATH), OpenLink) == OpenLink(
            send.notification_id, send.customer_id
        )
        assert PUBLIC + CLICK_PATH in text
    else:
        assert all(href.startswith("https://shop.example.com") for href in others), others
        assert links.images == []
        assert PUBLIC + CLICK_PATH not in text
        assert PUBLIC + CLICK_PATH not in html
        assert PUBLIC + OPEN_PATH not in html


def test_every_template_of_the_shipped_journeys_exists_and_compiles() -> None:
    assert template_problems(TEMPLATES, SHIPPED_TEMPLATES) == []


# ---------------------------------------------------------------- personalisation


def test_a_cart_reminder_lists_the_items_with_their_prices() -> None:
    text, html = _parts(_compose(journey_sends()["cart_reminder_1"]))
    assert "- Linen shirt x 2: €79.80" in text
    assert "- Canvas tote <Limited>: €19.00" in text
    assert "Total: €98.80" in text
    assert "Canvas tote &lt;Limited&gt;" in html  # escaped in HTML
    assert "€79.80" in html


def test_the_order_thank_you_names_the_order_its_items_and_the_points() -> None:
    message = _compose(journey_sends()["order_thank_you"])
    text, html = _parts(message)
    assert message["Subject"] == "Thank you for your order o-1001"
    assert "order o-1001" in text
    assert "- Linen shirt x 2: €79.80" in text
    assert "Your points balance is now 700." in text
    assert "<strong>700</strong>" in html


def test_recommendations_link_to_the_recommended_products() -> None:
    send = journey_sends()["recommendations"]
    text, html = _parts(_compose(send, tracking=False))
    hrefs = _links(html).hrefs
    # The first four recommendations, by name when the customer's cart or order named them.
    for product in ("p-200", "p-500", "p-600", "p-700"):
        assert f"https://shop.example.com/products/{product}" in hrefs
    assert "https://shop.example.com/products/p-800" not in hrefs
    assert "Canvas tote" in text  # p-200's name, from the cart
    assert "https://shop.example.com/products/p-900" in hrefs  # the upgrade


def test_the_points_reminder_says_the_balance() -> None:
    message = _compose(journey_sends()["points_reminder"])
    assert message["Subject"] == "You have 700 points to spend at Maison Verte"


def test_tier_and_ladder_emails_name_the_new_standing() -> None:
    tier = _compose(journey_sends()["tier_upgrade"])
    assert "you are now a VIP at Maison Verte" in str(tier["Subject"])
    ladder = _compose(journey_sends()["ladder_step_up"])
    assert "are now a Supporter at Maison Verte" in str(ladder["Subject"])


def test_the_referral_thank_you_does_not_name_who_was_referred() -> None:
    send = journey_sends()["referral_thank_you"]
    text, html = _parts(_compose(send))
    referred = send.context["trigger"]["referred_customer_id"]
    assert referred not in text
    assert referred not in html


def test_names_come_from_the_traits() -> None:
    send = journey_sends()["welcome"]
    only_name = Recipient.from_records("c-1", profile(traits={"name": "Ann Lee"}), scores())
    context = template_context(send, only_name, settings=SETTINGS)
    assert context["customer"]["first_name"] == "Ann"
    assert context["customer"]["name"] == "Ann Lee"
    camel = Recipient.from_records("c-1", profile(traits={"firstName": "Bo", "lastName": "Li"}))
    context = template_context(send, camel, settings=SETTINGS)
    assert (context["customer"]["first_name"], context["customer"]["name"]) == ("Bo", "Bo Li")
    weird = Recipient.from_records("c-1", profile(traits={"first_name": ["not", "text"]}))
    assert template_context(send, weird, settings=SETTINGS)["customer"]["first_name"] is None


def test_html_is_escaped_and_text_is_not() -> None:
    hostile = Recipient.from_records(
        "c-1", profile(traits={"first_name": '<script>alert("x")</script>'}), scores()
    )
    text, html = _parts(_compose(journey_sends()["welcome"], hostile))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert 'Hi <script>alert("x")</script>,' in text


def test_data_cannot_add_header_lines() -> None:
    hostile = Recipient.from_records(
        "c-1", profile(traits={"first_name": "Ann\r\nBcc: victim@example.com"}), scores()
    )
    message = _compose(journey_sends()["welcome"], hostile)
    wire = flatten(message)
    assert b"\r\nBcc:" not in wire
    assert message["Bcc"] is None
    assert "Ann Bcc: victim@example.com" in str(message["Subject"])


def test_an_address_cannot_add_header_lines() -> None:
    send = replace(journey_sends()["order_thank_you"], to="ann@example.com\r\nBcc: x@evil.test")
    wire = flatten(_compose(send))
    assert b"\r\nBcc:" not in wire
    assert b"ann@example.com Bcc: x@evil.test" in wire


# ---------------------------------------------------------------- headers


def test_the_headers_a_mailbox_provider_needs() -> None:
    send = journey_sends()["cart_reminder_1"]
    message = _compose(send)
    assert message["From"] == "Retain Shop <shop@retain.local>"
    assert message["To"] == f"Zoë Martin <{EMAIL}>"
    assert message["Date"] == "Thu, 12 Mar 2026 09:30:00 +0000"
    assert message["Message-ID"] == f"<{send.notification_id}@retain.local>"
    assert message["X-Retain-Notification-Id"] == send.notification_id
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]


def test_the_list_unsubscribe_url_is_written_whole() -> None:
    """The standard library would fold a long URL into RFC 2047 encoded words, which no mail
    client reads as a URL: it goes on the wire as written, one target per line."""
    config = settings(unsubscribe_mailto="unsubscribe@shop.example.com")
    wire = flatten(_compose(journey_sends()["welcome"], config=config)).decode("ascii")
    header = re.search(r"^List-Unsubscribe: (.*?)\r\n(?! )", wire, re.M | re.S)
    assert header is not None
    assert "=?" not in header.group(1)
    http, mailto = header.group(1).split(",\r\n ")
    assert re.fullmatch(rf"<{PUBLIC}/u/[A-Za-z0-9_-]+>", http)
    token = http[len(PUBLIC) + 4 : -1]
    assert mailto == f"<mailto:unsubscribe@shop.example.com?subject=unsubscribe%20{token}>"
    assert "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in wire
    assert all(len(line) <= 998 for line in wire.split("\r\n"))


def test_the_message_id_is_stable() -> None:
    send = journey_sends()["order_thank_you"]
    first = _compose(send)
    again = compose(
        send, bare_recipient(), signer=SIGNER, settings=SETTINGS, tracking=False, now=None
    )
    assert first["Message-ID"] == again["Message-ID"]
    assert first["Message-ID"] == message_id_for(send.notification_id, "retain.local")
    other = replace(send, notification_id="another-id")
    assert _compose(other)["Message-ID"] != first["Message-ID"]


@pytest.mark.parametrize(
    ("notification_id", "expected"),
    [
        ("4c1f6f5e-0f7b-5b9e-8c55-2b0d8f1e9a10", "<4c1f6f5e-0f7b-5b9e-8c55-2b0d8f1e9a10@d.test>"),
        ("plain.id", "<plain.id@d.test>"),
    ],
)
def test_message_ids(notification_id: str, expected: str) -> None:
    assert message_id_for(notification_id, "d.test") == expected


@pytest.mark.parametrize("notification_id", ["with space", "a..b", ".lead", "x" * 200, "<x>"])
def test_message_ids_of_odd_notification_ids_are_hashed_stably(notification_id: str) -> None:
    found = message_id_for(notification_id, "d.test")
    assert re.fullmatch(r"<n\.[0-9a-f]{40}@d\.test>", found)
    assert found == message_id_for(notification_id, "d.test")


def test_a_non_ascii_subject_and_name_are_encoded_and_read_back() -> None:
    message = _compose(journey_sends()["welcome"])
    wire = flatten(message)
    assert wire.isascii()
    parsed = email.message_from_bytes(wire, policy=policy.default)
    assert parsed["Subject"] == "Welcome to Maison Verte, Zoë"
    assert parsed["To"].addresses[0].display_name == "Zoë Martin"


def test_a_long_subject_is_folded_and_read_back_whole() -> None:
    name = "Maximilian-Alexander " * 8
    config = settings(store_name=name.strip()[:100])
    wire = flatten(_compose(journey_sends()["points_reminder"], config=config))
    assert all(len(line) <= 78 for line in wire.split(b"\r\n\r\n")[0].split(b"\r\n")[:4])
    parsed = email.message_from_bytes(wire, policy=policy.default)
    assert parsed["Subject"] == f"You have 700 points to spend at {name.strip()[:100]}"


def test_transactional_email_has_no_unsubscribe() -> None:
    send = journey_sends()["order_thank_you"]
    assert send.kind == "transactional"
    message = _compose(send)
    text, html = _parts(message)
    assert message["List-Unsubscribe"] is None
    assert "Unsubscribe" not in text
    assert "nsubscribe" not in html


def test_tracking_needs_both_the_journey_and_the_shell() -> None:
    send = journey_sends()["welcome"]
    untracked_journey = replace(send, tracking=False)
    for message in (_compose(untracked_journey, tracking=True), _compose(send, tracking=False)):
        _, html = _parts(message)
        assert PUBLIC + OPEN_PATH not in html
        assert PUBLIC + CLICK_PATH not in html
    _, html = _parts(_compose(send, tracking=True))
    assert PUBLIC + OPEN_PATH in html


def test_links_are_signed_with_the_configured_secret() -> None:
    send = journey_sends()["welcome"]
    _, html = _parts(_compose(send))
    href = next(h for h in _links(html).hrefs if CLICK_PATH in h)
    with pytest.raises(ValueError, match="bad signature"):
        LinkSigner("another secret " + "z" * 32).verify(_token(href, CLICK_PATH), ClickLink)


# ---------------------------------------------------------------- templates as files


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    copy = tmp_path / "templates"
    shutil.copytree(SHIPPED_TEMPLATES, copy)
    return copy


def test_a_locale_variant_is_used_for_customers_of_that_locale(templates: Path) -> None:
    (templates / "welcome.fr.subject.txt").write_text("Bienvenue chez {{ store.name }}")
    config = settings(notify_templates_dir=templates)
    send = journey_sends()["welcome"]
    french = Recipient.from_records("c-1", profile(locale="fr-CA"), scores())
    assert _compose(send, french, config=config)["Subject"] == "Bienvenue chez Maison Verte"
    english = Recipient.from_records("c-1", profile(locale="en-GB"), scores())
    assert _compose(send, english, config=config)["Subject"] == "Welcome to Maison Verte, Zoë"
    odd = Recipient.from_records("c-1", profile(locale="../../etc"), scores())
    assert _compose(send, odd, config=config)["Subject"] == "Welcome to Maison Verte, Zoë"


def test_a_template_mistake_fails_loudly(templates: Path) -> None:
    (templates / "welcome.subject.txt").write_text("Hello {{ customer.nickname }}")
    config = settings(notify_templates_dir=templates)
    with pytest.raises(UndefinedError, match="nickname"):
        _compose(journey_sends()["welcome"], config=config)


def test_a_missing_template_fails_loudly(templates: Path) -> None:
    (templates / "welcome.html").unlink()
    config = settings(notify_templates_dir=templates)
    with pytest.raises(TemplateNotFound, match=r"welcome\.html"):
        _compose(journey_sends()["welcome"], config=config)


def test_template_problems_name_missing_and_broken_files(templates: Path) -> None:
    (templates / "welcome.txt").unlink()
    (templates / "winback_1.html").write_text("{% if %}")
    problems = template_problems([*TEMPLATES, "brand_new"], templates)
    assert any(p.startswith("welcome: ") and p.endswith("welcome.txt is missing") for p in problems)
    assert sum(p.startswith("brand_new: ") for p in problems) == 3
    assert any(p.startswith("winback_1.html, line 1: ") for p in problems)


# ---------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("42.5", "EUR", "€42.50"),
        ("1200", "usd", "$1,200.00"),
        ("19.99", "GBP", "£19.99"),
        ("1200", "JPY", "1,200 JPY"),
        ("9.5", "CHF", "9.50 CHF"),
        ("9.5", None, "9.50"),
        ("not money", "EUR", ""),
        (None, "EUR", ""),
    ],
)
def test_money(amount: Any, currency: str | None, expected: str) -> None:
    assert format_money(amount, currency) == expected
