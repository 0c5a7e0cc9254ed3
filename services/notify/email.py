"""Notify's emails: a `Send` from the engine rendered into a MIME message ready for SMTP.

    message = compose(send, recipient, signer=signer, settings=settings, tracking=True)
    await delivery.deliver(message)                      # services.notify.smtp
    message_id_for(send.notification_id, settings.message_domain)   # == message["Message-ID"]

`compose(send, recipient, *, signer, settings, tracking, now=None) -> EmailMessage` renders the
send's template from `settings.notify_templates_dir`: `<template>.subject.txt`, `<template>.txt`
and `<template>.html` (Jinja2; HTML autoescaped; an undefined variable fails the render instead
of printing nothing), each looked up first for the customer's locale (`welcome.fr-CA.html`, then
`welcome.fr.html`, then `welcome.html`). The variables the templates get are listed in
`template_context` and docs/email.md.

The message: multipart/alternative, a text part then an HTML part (quoted-printable UTF-8), with
From (RETAIN_MAIL_FROM), To, Subject, Date, a Message-ID derived from the notification id alone
(a retried email keeps it), X-Retain-Notification-Id, and on marketing email List-Unsubscribe
(the signed one-click URL, plus a mailto when RETAIN_UNSUBSCRIBE_MAILTO is set) and
List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058). Every marketing email also shows
an unsubscribe link in both parts (the layouts put it in the footer).

Tracking happens when the journey allows it (`send.tracking`) and the shell does (`tracking`:
False for a customer who switched it off). Then every link a template writes through `link()`
becomes a signed click URL that redirects to it, and the HTML ends with a 1x1 open pixel;
otherwise links stay as written and there is no pixel. The unsubscribe link is never a click
link: it is its own signed link.

Headers are written already encoded and folded (`set_raw`) and kept as written by `POLICY`: the
default folding of the standard library would turn a long List-Unsubscribe URL into RFC 2047
encoded words, which no mail client reads as a URL. Flatten with `flatten(message)` (SMTP line
endings, nothing refolded); `SmtpDelivery` does.

`template_problems(template_ids, directory)` lists missing or broken templates, for the shell
to refuse to start with.
"""

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email import policy as email_policy
from email.generator import BytesGenerator
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    select_autoescape,
)

from services.notify.domain.actions import Send
from services.notify.domain.links import LinkSigner, LinkUrls, is_redirect_target
from services.notify.domain.recipient import Recipient
from services.notify.settings import NotifySettings

POLICY = email_policy.SMTP.clone(refold_source="none")
"""CRLF line endings; headers set raw (already encoded and folded) are written as they are."""

SUBJECT_SUFFIX, TEXT_SUFFIX, HTML_SUFFIX = ".subject.txt", ".txt", ".html"
SUFFIXES = (SUBJECT_SUFFIX, TEXT_SUFFIX, HTML_SUFFIX)
MAX_PRODUCTS = 4
"""Products listed per email (recommendations, upgrades, past purchases)."""
MAX_SUBJECT = 200
_ENCODED_WORD_BYTES = 45

_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LOCALE = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,3}$")
_CRLF = "\r\n"
_BOUNDARY = re.compile(r'^multipart/[^;]*;.*\bboundary=(?:"([^"]+)"|([^\s;"]+))', re.I | re.S)
_WHITESPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n\s*\n(?:\s*\n)+")
_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹"}
_NO_DECIMALS = frozenset({"JPY", "KRW", "CLP", "ISK", "VND", "HUF", "TWD", "UGX", "XOF", "XAF"})


def message_id_for(notification_id: str, domain: str) -> str:
    """`<notification-id@domain>`: the same notification always has the same Message-ID, so a
    retried email is recognisably the same email. An id that is not a dot-atom (the engine's
    UUIDs are) is replaced by a hash of it."""
    local = notification_id
    if not _DOT_ATOM.match(local) or len(local) > 128:
        local = "n." + hashlib.sha256(notification_id.encode()).hexdigest()[:40]
    return f"<{local}@{domain}>"


def compose(
    send: Send,
    recipient: Recipient,
    *,
    signer: LinkSigner,
    settings: NotifySettings,
    tracking: bool,
    now: datetime | None = None,
    subject_prefix: str = "",
) -> EmailMessage:
    """The email for `send`, rendered for `recipient` (their profile and scores as notify holds
    them). `tracking`: the shell's say (False when the customer switched tracking off); tracked
    only if the journey's `send.tracking` is true too. `subject_prefix` goes before the
    rendered subject (a test send's "[Test] "). Template errors raise (jinja2 errors:
    TemplateNotFound, UndefinedError...)."""
    urls = LinkUrls(signer, settings.public_url)
    tracked = send.tracking and tracking
    marketing = send.kind == "marketing"
    unsubscribe_url = (
        urls.unsubscribe_url(send.notification_id, send.customer_id, send.to) if marketing else None
    )

    signed: dict[str, str] = {}

    def link(url: str) -> str:
        if not tracked:
            return url
        if url not in signed:
            target = is_redirect_target(url)
            signed[url] = (
                urls.click_url(send.notification_id, send.customer_id, url) if target else url
            )
        return signed[url]

    context = template_context(send, recipient, settings=settings, link=link)
    context["unsubscribe_url"] = unsubscribe_url
    context["open_pixel_url"] = (
        urls.open_url(send.notification_id, send.customer_id) if tracked else None
    )
    context["tracking"] = tracked

    directory = settings.notify_templates_dir
    locale = _text(recipient.profile.get("locale"))
    subject = _template(directory, send.template, SUBJECT_SUFFIX, locale).render(context)
    subject = _one_line(subject_prefix + subject)[:MAX_SUBJECT]
    context["subject"] = subject
    text = _template(directory, send.template, TEXT_SUFFIX, locale).render(context)
    text = _BLANK_LINES.sub("\n\n", text)  # what template tags leave behind
    html = _template(directory, send.template, HTML_SUFFIX, locale).render(context)

    message = EmailMessage(policy=POLICY)
    message.set_raw("From", _from_header(settings.mail_from))
    message.set_raw("To", _address_header(context["customer"]["name"] or "", send.to))
    message.set_raw("Subject", _encode_text(subject, "Subject"))
    message.set_raw("Date", format_datetime((now or datetime.now(UTC)).astimezone(UTC)))
    message.set_raw("Message-ID", message_id_for(send.notification_id, settings.message_domain))
    message.set_raw("X-Retain-Notification-Id", _one_line(send.notification_id))
    if unsubscribe_url is not None:
        targets = [f"<{unsubscribe_url}>"]
        if settings.unsubscribe_mailto:
            token = unsubscribe_url.rsplit("/", 1)[1]
            targets.append(f"<mailto:{settings.unsubscribe_mailto}?subject=unsubscribe%20{token}>")
        message.set_raw("List-Unsubscribe", ",\r\n ".join(targets))  # one target per line
        message.set_raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    message.set_raw("MIME-Version", "1.0")
    boundary = "=_retain_" + hashlib.sha256(send.notification_id.encode()).hexdigest()[:32]
    message.set_raw("Content-Type", f'multipart/alternative; boundary="{boundary}"')
    message.set_payload([_part(text, "plain"), _part(html, "html")])
    return message


def flatten(message: EmailMessage, *, utf8: bool = False) -> bytes:
    """The message as SMTP DATA: CRLF line endings, headers set raw kept as written. `utf8`: the
    server takes SMTPUTF8 (an address with non-ASCII characters).

    A message made of raw headers and already encoded payloads, as `compose` makes them, is
    written directly: the same bytes as the standard library's generator, some sixty times
    faster. Any other message goes through the generator."""
    try:
        return _flatten_raw(message, "utf-8" if utf8 else "ascii")
    except (_NotRaw, UnicodeEncodeError):
        out = BytesIO()
        BytesGenerator(out, policy=POLICY.clone(utf8=utf8)).flatten(message)
        return out.getvalue()


class _NotRaw(Exception):
    pass


def _flatten_raw(message: EmailMessage, encoding: str) -> bytes:
    head, boundary = [], None
    for name, value in message.raw_items():
        if type(value) is not str:  # a header object: the generator folds it
            raise _NotRaw
        if name.lower() == "content-type":
            match = _BOUNDARY.search(value)
            boundary = match.group(1) or match.group(2) if match else None
        head.append(f"{name}: {_CRLF.join(value.splitlines())}\r\n")
    head.append("\r\n")
    out = "".join(head).encode(encoding)
    if message.preamble or message.epilogue or message.defects:
        raise _NotRaw
    # The payload as stored (get_payload() would parse headers to decide what to decode).
    payload: Any = message._payload  # type: ignore[attr-defined]
    if isinstance(payload, str):
        text = _CRLF.join(payload.splitlines())
        return out + (text + _CRLF if payload.endswith(("\n", "\r")) else text).encode(encoding)
    if not isinstance(payload, list) or not boundary:
        raise _NotRaw
    delimiter = f"--{boundary}".encode(encoding)
    parts = [out]
    for part in payload:
        if not isinstance(part, EmailMessage):
            raise _NotRaw
        parts += [delimiter, b"\r\n", _flatten_raw(part, encoding), b"\r\n"]
    parts += [delimiter, b"--\r\n"]
    return b"".join(parts)


def template_context(
    send: Send,
    recipient: Recipient,
    *,
    settings: NotifySettings,
    link: Callable[[str], str] = lambda url: url,
) -> dict[str, Any]:
    """What every template can read (docs/email.md):

    - `store`: `name`, `url`, `cart_url`;
    - `customer`: `id`, `email` (the address the email goes to), `first_name`, `last_name`,
      `name` (each None when unknown), `locale`;
    - `points` (loyalty balance, 0 when unknown), `tier` (value tier), `ladder_step`, `stage`
      (lifecycle stage), each None when scores are missing;
    - `items`: the trigger's cart or order lines, each `product_id`, `name` (else the product
      id), `quantity`, `price`, `total` (price times quantity; None without a price), `url`;
    - `total`, `currency`, `order_id`: the trigger's cart value or order revenue, its currency
      (else the profile's), the order id (None when not an order);
    - `cart`: `items_count`, `value`, `currency` (the trigger's cart, else the profile's);
    - `purchased`, `recommendations`, `upgrades`: up to four products each (`product_id`,
      `name`, `url`): bought before (profile), suggested by scoring (scores);
    - `trigger` (the trigger event's JSON, as lifecycle.v1 has it), `journey`, `template`,
      `kind`, `notification_id`;
    - `link(url)`: the URL to write in the email (a signed click URL when tracking is on);
      `product_url(product_id)`; the filter `money(currency)`: `{{ total|money(currency) }}`.

    `compose` adds `subject`, `unsubscribe_url` (marketing only, else None), `open_pixel_url`
    (None without tracking) and `tracking`.
    """
    profile = recipient.profile
    scores = recipient.scores
    trigger = _mapping(send.context.get("trigger"))
    traits = _mapping(profile.get("traits"))
    commerce = _mapping(profile.get("commerce"))
    profile_cart = _mapping(profile.get("cart"))

    def product_url(product_id: str) -> str:
        return settings.product_url_template.format(
            store_url=settings.store_url, product_id=quote(str(product_id), safe="")
        )

    names = {
        str(line["product_id"]): str(line["name"])
        for line in (*_lines(profile_cart.get("items")), *_lines(trigger.get("items")))
        if line.get("product_id") and line.get("name")
    }

    def products(ids: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for product_id in _sequence(ids):
            if isinstance(product_id, str) and product_id and len(found) < MAX_PRODUCTS:
                found.append(
                    {
                        "product_id": product_id,
                        "name": names.get(product_id, product_id),
                        "url": product_url(product_id),
                    }
                )
        return found

    items = []
    for line in _lines(trigger.get("items")):
        product_id = _text(line.get("product_id"))
        quantity = line.get("quantity")
        quantity = quantity if isinstance(quantity, int) and quantity > 0 else 1
        price = _decimal(line.get("price"))
        items.append(
            {
                "product_id": product_id,
                "name": _text(line.get("name")) or product_id or _text(line.get("sku")) or "Item",
                "quantity": quantity,
                "price": price,
                "total": None if price is None else price * quantity,
                "url": product_url(product_id) if product_id else settings.store_url,
            }
        )

    first = _text(traits.get("first_name")) or _text(traits.get("firstName"))
    last = _text(traits.get("last_name")) or _text(traits.get("lastName"))
    full = _text(traits.get("name")) or " ".join(part for part in (first, last) if part) or None
    if first is None and full:
        first = full.split()[0]
    currency = _text(trigger.get("currency")) or _text(commerce.get("currency"))
    total = _decimal(trigger.get("value"))
    if total is None:
        total = _decimal(trigger.get("revenue"))
    cart_url = settings.store_url + "/cart"
    points = _mapping(profile.get("loyalty")).get("points_balance")
    return {
        "store": {"name": settings.store_name, "url": settings.store_url, "cart_url": cart_url},
        "customer": {
            "id": send.customer_id,
            "email": send.to,
            "first_name": first,
            "last_name": last,
            "name": full,
            "locale": _text(profile.get("locale")),
        },
        "points": points if isinstance(points, int) else 0,
        "tier": _text(scores.get("value_tier")),
        "ladder_step": _text(scores.get("ladder_step")),
        "stage": _text(scores.get("lifecycle_stage")),
        "items": items,
        "total": total,
        "currency": currency,
        "order_id": _text(trigger.get("order_id")),
        "cart": {
            "items_count": _count(trigger.get("items_count"), profile_cart.get("items_count")),
            "value": total if total is not None else _decimal(profile_cart.get("value")),
            "currency": currency or _text(profile_cart.get("currency")),
        },
        "purchased": products(commerce.get("products_purchased")),
        "recommendations": products(scores.get("recommendations")),
        "upgrades": products(scores.get("upgrades")),
        "trigger": trigger,
        "journey": send.journey,
        "template": send.template,
        "kind": send.kind,
        "notification_id": send.notification_id,
        "link": link,
        "product_url": product_url,
    }


def template_problems(template_ids: Iterable[str], directory: Path) -> list[str]:
    """Missing or broken templates, each named: every id needs its three files (locale
    variants are optional), and every template file in the directory must compile."""
    problems = []
    environment = _environment(directory)
    for template_id in sorted(set(template_ids)):
        for suffix in SUFFIXES:
            if not (directory / f"{template_id}{suffix}").is_file():
                problems.append(f"{template_id}: {directory / (template_id + suffix)} is missing")
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name.endswith((".txt", ".html")):
            name = path.relative_to(directory).as_posix()
            try:
                environment.get_template(name)
            except TemplateError as error:
                line = getattr(error, "lineno", None)
                where = f"{name}, line {line}" if line else name
                problems.append(f"{where}: {error.message or error}")
    return problems


def format_money(amount: Any, currency: str | None = None) -> str:
    """`€42.50`, `$5.00`, `1,200 JPY`...: the amount with two decimals (none for currencies
    without minor units), the symbol of a few common currencies, else the ISO code after."""
    value = _decimal(amount)
    if value is None:
        return ""
    code = (currency or "").upper()
    exponent = Decimal(1) if code in _NO_DECIMALS else Decimal("0.01")
    number = f"{value.quantize(exponent):,}"
    symbol = _CURRENCY_SYMBOLS.get(code)
    if symbol and code not in _NO_DECIMALS:
        return f"{symbol}{number}"
    return f"{number} {code}".strip()


# ---------------------------------------------------------------- rendering


@lru_cache(maxsize=8)
def _environment(directory: Path) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(str(directory)),
        autoescape=select_autoescape(
            enabled_extensions=("html",), default_for_string=False, default=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates are read once; restart to pick up edits
    )
    environment.filters["money"] = format_money
    return environment


@lru_cache(maxsize=2048)
def _template(directory: Path, template: str, suffix: str, locale: str | None) -> Template:
    names = [f"{template}{suffix}"]
    if locale and _LOCALE.match(locale):
        tag = locale.replace("_", "-")
        language = tag.split("-")[0].lower()
        names[:0] = [f"{template}.{tag}{suffix}", f"{template}.{language}{suffix}"]
    try:
        return _environment(directory).select_template(list(dict.fromkeys(names)))
    except TemplateNotFound:
        raise TemplateNotFound(f"{template}{suffix} in {directory}") from None


def _part(body: str, subtype: str) -> EmailMessage:
    part = EmailMessage(policy=POLICY)
    part.set_raw("Content-Type", f'text/{subtype}; charset="utf-8"')
    part.set_raw("Content-Transfer-Encoding", "quoted-printable")
    encoded = binascii.b2a_qp(body.strip().encode("utf-8") + b"\n", istext=True)
    part.set_payload(encoded.decode("ascii"))
    return part


@lru_cache(maxsize=16)
def _from_header(mail_from: str) -> str:
    return _address_header(*parseaddr(mail_from))


def _address_header(name: str, address: str) -> str:
    # One line whatever the data: an address with a line break must not add a header (SMTP
    # then refuses the address with the space in it, as a hard bounce).
    name, address = _one_line(name), _one_line(address)
    if not name:
        return address
    return formataddr((name, address), charset="utf-8")


def _encode_text(text: str, header_name: str) -> str:
    """An unstructured header value (RFC 5322/2047): ASCII folded at spaces; otherwise base64
    encoded words of at most 45 bytes (75 characters), never splitting a character."""
    if text.isascii():
        return Header(text, "us-ascii", header_name=header_name).encode(linesep="\r\n")
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > _ENCODED_WORD_BYTES:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    words.append("".join(chunk))
    encoded = (base64.b64encode(word.encode("utf-8")).decode("ascii") for word in words)
    return "\r\n ".join(f"=?utf-8?b?{word}?=" for word in encoded)


def _one_line(text: str) -> str:
    """No line breaks or runs of whitespace (a header must not gain lines from its data)."""
    return _WHITESPACE.sub(" ", text).strip()


# ---------------------------------------------------------------- reading the records


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _lines(value: Any) -> list[Mapping[str, Any]]:
    return [line for line in _sequence(value) if isinstance(line, Mapping)]


def _text(value: Any) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = _WHITESPACE.sub(" ", str(value)).strip()
        return text[:200] or None
    return None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _count(*values: Any) -> int:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return 0
