"""SMTP delivery: a small pool of reused aiosmtplib connections, and every answer sorted into
what the sender worker does next.

    delivery = SmtpDelivery(settings)        # nothing connects until the first delivery
    result = await delivery.deliver(message)  # an EmailMessage from services.notify.email
    match result:
        case Delivered(response):             # accepted: record `sent`
        case TemporaryFailure(code, text):    # retry later, after backoff(attempt)
        case HardBounce(code, text):          # suppress the address, publish `bounced`
    await delivery.close()

`deliver(message) -> DeliveryResult` never raises for anything the server or the network does:

- `Delivered(response)`: the server accepted the message (`response` is its answer to DATA,
  e.g. "2.0.0 Ok: queued as 5A3C...");
- `TemporaryFailure(code, text)`: try again later with `backoff(attempt)`. A 4xx answer, a
  refused, reset or timed-out connection, and also whatever goes wrong before the recipient is
  named (a refused greeting or login, STARTTLS failing, our sender address refused): those
  are about the server or our configuration, never about the address, so they never
  suppress it. `code` is None when no SMTP answer was received. Problems of configuration
  (a 5xx to our greeting, login or sender) are logged as errors;
- `HardBounce(code, text)`: a 5xx answer to RCPT or DATA: the address is refused for good.
  `code` is None for an address that cannot be sent to at all (malformed, or non-ASCII to a
  server without SMTPUTF8).

Connections: up to RETAIN_SMTP_CONNECTIONS (4) per SmtpDelivery, opened on demand and kept open
between messages (concurrent `deliver` calls use different connections, and wait when all are
busy). A connection the server closed is noticed and replaced; one idle for more than
`IDLE_PROBE_SECONDS` is probed with NOOP before use; after a failed transaction aiosmtplib
sends RSET and the connection is reused; after a timeout or a 421 it is dropped. A message is
never sent twice by this class: a transaction cut after DATA began is a TemporaryFailure (the
server may or may not have kept it; the stable Message-ID lets the receiving side tell a
retried copy), only a connection found dead before MAIL FROM is replaced and the message
sent on the new one.

TLS per RETAIN_SMTP_TLS: `none`, `starttls` (required, not opportunistic) or `tls` (implicit,
usually port 465), certificates checked against the system's CAs or RETAIN_SMTP_CA_FILE; AUTH
with RETAIN_SMTP_USERNAME / RETAIN_SMTP_PASSWORD after connecting.

aiosmtplib does not pipeline (RFC 2920): each message costs four round trips (MAIL, RCPT,
DATA, the body). Throughput comes from keeping the connections open and using several at
once: on loopback to Mailpit that is a few thousand messages per second per process
(tests/integration/notify/test_smtp.py checks 500 per second).
"""

import asyncio
import copy
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from functools import lru_cache

import aiosmtplib

from services.notify.email import flatten
from services.notify.settings import NotifySettings

log = logging.getLogger(__name__)

IDLE_PROBE_SECONDS = 10.0
"""A connection idle for longer is checked with NOOP before it carries a message."""

BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=2)
MAX_ATTEMPTS = 12
"""A suggestion for the sender worker: backoff(1..11) waits about 12 hours in all, after which
the address can be given up on as a soft bounce."""


@dataclass(frozen=True, slots=True)
class Delivered:
    response: str
    """The server's answer to the message, e.g. "2.0.0 Ok: queued as 5A3C..."."""


@dataclass(frozen=True, slots=True)
class TemporaryFailure:
    code: int | None
    """The SMTP reply code (4xx, or a 5xx before the recipient was named); None when the
    connection failed (refused, reset, timed out) without an answer."""
    text: str


@dataclass(frozen=True, slots=True)
class HardBounce:
    code: int | None
    """The 5xx reply to RCPT or DATA; None when the address cannot be used at all."""
    text: str


DeliveryResult = Delivered | TemporaryFailure | HardBounce


def backoff(
    attempt: int,
    *,
    base: timedelta = BACKOFF_BASE,
    cap: timedelta = BACKOFF_CAP,
    jitter: Callable[[], float] = random.random,
) -> timedelta:
    """How long to wait before retrying after the `attempt`-th temporary failure (1, 2, ...):
    base doubled each time (1, 2, 4, 8 minutes...), at most `cap`, then between half of it and
    all of it at random (`jitter` in [0, 1)), so retries after an outage spread out."""
    if attempt < 1:
        raise ValueError("attempts are counted from 1")
    delay = min(base * (1 << min(attempt - 1, 32)), cap)
    return delay * (0.5 + 0.5 * min(max(jitter(), 0.0), 1.0))


class SmtpDelivery:
    """Delivers EmailMessages over a pool of SMTP connections (see the module docstring)."""

    def __init__(self, settings: NotifySettings) -> None:
        self._settings = settings
        self._tls_context: ssl.SSLContext | None = None
        if settings.smtp_tls != "none":
            cafile = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
            self._tls_context = ssl.create_default_context(cafile=cafile)
        self._slots = asyncio.Semaphore(settings.smtp_connections)
        self._idle: list[_Connection] = []
        self._closed = False
        self.connections_opened = 0
        """Connections opened so far (a metric: it grows with reconnections, not messages)."""

    @property
    def server(self) -> str:
        return f"{self._settings.smtp_host}:{self._settings.smtp_port}"

    async def deliver(self, message: EmailMessage) -> DeliveryResult:
        """Send `message` to the addresses in its To, Cc and Bcc headers (Bcc is not sent
        along), from the address in its From header."""
        if self._closed:
            raise RuntimeError("SmtpDelivery is closed")
        try:
            sender, recipients = _envelope(message)
        except ValueError as error:
            return HardBounce(None, str(error))
        utf8 = not (sender.isascii() and all(r.isascii() for r in recipients))
        if message.get("Bcc") is not None:
            message = _without_bcc(message)
        data = flatten(message, utf8=utf8)
        options = ["SMTPUTF8"] if utf8 else []
        async with self._slots:
            return await self._send(sender, recipients, data, options, _label(message))

    async def close(self) -> None:
        """QUIT every idle connection; connections in use close when their message is done."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(connection.quit() for connection in idle))

    async def check(self) -> bool:
        """Whether the server answers (a connection opens, or an idle one answers NOOP)."""
        async with self._slots:
            try:
                connection = await self._acquire()
            except _ConnectFailed:
                return False
            self._release(connection)
            return True

    # ---------------------------------------------------------------- internals

    async def _send(
        self, sender: str, recipients: list[str], data: bytes, options: list[str], label: str
    ) -> DeliveryResult:
        for _ in range(2):  # a second time only when a reused connection was dead before MAIL
            try:
                connection = await self._acquire()
            except _ConnectFailed as failed:
                return failed.result
            try:
                _, response = await connection.client.sendmail(
                    sender, recipients, data, mail_options=options
                )
            except aiosmtplib.SMTPRecipientsRefused as refused:
                self._release(connection)
                first = refused.recipients[0]
                return _by_code(first.code, first.message, hard=True)
            except aiosmtplib.SMTPSenderRefused as error:
                if error.code == 421 or not connection.client.is_connected:
                    connection.drop()  # the server is closing: nothing was sent, try anew
                    continue
                self._release(connection)
                if error.code >= 500:
                    log.error("SMTP server %s refused our sender: %s", self.server, error)
                return TemporaryFailure(error.code, error.message)
            except aiosmtplib.SMTPNotSupported as error:
                self._release(connection)
                return HardBounce(None, str(error))
            except ValueError as error:  # a command the client will not send, as it stands
                connection.drop()  # refused mid-transaction: the connection is in no known state
                return HardBounce(None, str(error))
            except aiosmtplib.SMTPResponseException as error:  # DATA refused, or another reply
                if error.code == 421 or not connection.client.is_connected:
                    connection.drop()
                else:
                    self._release(connection)
                hard = isinstance(error, aiosmtplib.SMTPDataError)
                return _by_code(error.code, error.message, hard=hard)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                connection.drop()
                log.warning("SMTP to %s failed for %s: %s", self.server, label, _describe(error))
                return TemporaryFailure(None, _describe(error))
            except BaseException:
                connection.drop()  # cancelled mid-transaction: the connection is in no known state
                raise
            self._release(connection)
            return Delivered(response)
        return TemporaryFailure(421, f"{self.server} closed the connection twice; try again later")

    async def _acquire(self) -> "_Connection":
        """An idle connection that still answers, else a new one (raises _ConnectFailed)."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.client.is_connected:
                connection.drop()
                continue
            if time.monotonic() - connection.last_used > IDLE_PROBE_SECONDS:
                try:
                    await connection.client.noop()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    connection.drop()
                    continue
            return connection
        connection = _Connection(self._client())
        self.connections_opened += 1
        try:
            await connection.client.connect()
        except aiosmtplib.SMTPAuthenticationError as error:
            log.error("SMTP login to %s refused: %s %s", self.server, error.code, error.message)
            raise _ConnectFailed(TemporaryFailure(error.code, error.message)) from None
        except aiosmtplib.SMTPResponseException as error:  # the greeting, EHLO or STARTTLS
            level = logging.ERROR if error.code >= 500 else logging.WARNING
            log.log(level, "SMTP server %s refused us: %s %s", self.server, error.code, error)
            raise _ConnectFailed(TemporaryFailure(error.code, error.message)) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as error:
            log.warning("SMTP server %s unreachable: %s", self.server, _describe(error))
            raise _ConnectFailed(TemporaryFailure(None, _describe(error))) from None
        return connection

    def _release(self, connection: "_Connection") -> None:
        if self._closed or not connection.client.is_connected:
            connection.drop()
            return
        connection.last_used = time.monotonic()
        self._idle.append(connection)

    def _client(self) -> aiosmtplib.SMTP:
        settings = self._settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            timeout=settings.smtp_timeout_seconds,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",
            tls_context=self._tls_context,
        )


class _Connection:
    __slots__ = ("client", "last_used")

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self.client = client
        self.last_used = time.monotonic()

    def drop(self) -> None:
        self.client.close()

    async def quit(self) -> None:
        try:
            if self.client.is_connected:
                await asyncio.wait_for(self.client.quit(), timeout=5)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            self.client.close()


class _ConnectFailed(Exception):
    def __init__(self, result: TemporaryFailure) -> None:
        super().__init__(result.text)
        self.result = result


def _by_code(code: int, text: str, *, hard: bool) -> DeliveryResult:
    """A reply to RCPT or DATA: 5xx is for good (when `hard`), anything else is temporary."""
    if hard and 500 <= code <= 599:
        return HardBounce(code, text)
    return TemporaryFailure(code, text)


def _envelope(message: EmailMessage) -> tuple[str, list[str]]:
    """MAIL FROM and RCPT TO from the headers; ValueError when there is nothing usable."""
    sender = _address(_header(message, "From"))
    if not sender:
        raise ValueError("the message has no From address")
    recipients = [
        address
        for name in ("To", "Cc", "Bcc")
        for _, address in getaddresses(_headers(message, name))
        if address
    ]
    if not recipients:
        raise ValueError("the message has no recipient address")
    for address in (sender, *recipients):
        local, at, domain = address.rpartition("@")
        if not (local and at and domain) or _UNSENDABLE.search(address):
            raise ValueError(f"not an address an SMTP server can take: {address!r}")
    return sender, recipients


# What no address in MAIL FROM or RCPT TO may hold: whitespace, <, >, a quote, and control
# characters, which SMTP clients refuse to send (aiosmtplib raises ValueError).
_UNSENDABLE = re.compile(r'[\s<>"\x00-\x1f\x7f]')


@lru_cache(maxsize=64)
def _address(header: str) -> str:
    return parseaddr(header)[1]


def _header(message: EmailMessage, name: str) -> str:
    values = _headers(message, name)
    return values[0] if values else ""


def _headers(message: EmailMessage, name: str) -> Sequence[str]:
    # Raw values as set (compose sets them raw): parsing them into header objects is slow.
    wanted = name.lower()
    return [str(value) for key, value in message.raw_items() if key.lower() == wanted]


def _without_bcc(message: EmailMessage) -> EmailMessage:
    stripped = copy.copy(message)
    del stripped["Bcc"]
    return stripped


def _label(message: EmailMessage) -> str:
    """How logs name a message: its notification id, never its address."""
    return _header(message, "X-Retain-Notification-Id") or _header(message, "Message-ID") or "?"


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}" if text != type(error).__name__ else text
