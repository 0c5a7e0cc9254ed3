"""SMTP delivery against real servers: composed emails arrive whole (headers, parts, signed
links) through Mailpit; every answer a server can give is sorted into Delivered, TemporaryFailure
or HardBounce; connections are reused, replaced when the server drops them, and secured with
STARTTLS or implicit TLS and a login."""

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from email.message import EmailMessage
from typing import Any

import pytest

from services.devstack.mailpit import LocalMailpit
from services.devstack.ports import LOOPBACK, free_port
from services.notify.domain.links import (
    CLICK_PATH,
    OPEN_PATH,
    UNSUBSCRIBE_PATH,
    ClickLink,
    OpenLink,
    UnsubscribeLink,
)
from services.notify.email import compose
from services.notify.settings import NotifySettings
from services.notify.smtp import Delivered, HardBounce, SmtpDelivery, TemporaryFailure
from tests.integration.helpers import MailpitInbox
from tests.integration.notify.conftest import Certificates, MailpitServer, ScriptedSmtp
from tests.unit.notify.email_factory import (
    EMAIL,
    NOW,
    journey_sends,
    realistic_recipient,
    settings,
)

pytestmark = pytest.mark.integration

PUBLIC = "https://notify.example.com"
Scripted = Callable[..., Awaitable[ScriptedSmtp]]


def _settings(port: int, **overrides: Any) -> NotifySettings:
    return settings(smtp_host=LOOPBACK, smtp_port=port, **overrides)


def _email(
    config: NotifySettings, template: str = "cart_reminder_1", **changes: Any
) -> EmailMessage:
    send = replace(journey_sends()[template], **changes)
    return compose(
        send,
        realistic_recipient(),
        signer=config.link_signer(),
        settings=config,
        tracking=True,
        now=NOW,
    )


# ---------------------------------------------------------------- Mailpit: what arrives


async def test_an_email_arrives_whole(mailpit: LocalMailpit, inbox: MailpitInbox) -> None:
    config = _settings(mailpit.smtp_port)
    message = _email(config)
    delivery = SmtpDelivery(config)
    try:
        result = await delivery.deliver(message)
    finally:
        await delivery.close()
    assert isinstance(result, Delivered)
    assert "queued" in result.response

    [summary] = await inbox.wait_for(1)
    assert summary["Subject"] == "Zoë, you left something in your cart"
    assert summary["To"] == [{"Name": "Zoë Martin", "Address": EMAIL}]
    assert f"<{summary['MessageID']}>" == message["Message-ID"]

    headers = await inbox.headers(summary["ID"])
    assert headers["Message-Id"] == [message["Message-ID"]]
    assert headers["X-Retain-Notification-Id"] == [message["X-Retain-Notification-Id"]]
    assert headers["List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]
    [unsubscribe_header] = headers["List-Unsubscribe"]
    [unsubscribe_url] = re.findall(r"<([^>]+)>", unsubscribe_header)
    signer = config.link_signer()
    unsubscribe = signer.verify(
        unsubscribe_url.removeprefix(PUBLIC + UNSUBSCRIBE_PATH), UnsubscribeLink
    )
    assert unsubscribe.email == EMAIL

    read = await inbox.message(summary["ID"])
    assert read["From"] == {"Name": "Retain Shop", "Address": "shop@retain.local"}
    assert "- Linen shirt x 2: €79.80" in read["Text"]
    assert unsubscribe_url in read["Text"]
    assert unsubscribe_url in read["HTML"]
    clicks = re.findall(rf'href="{re.escape(PUBLIC + CLICK_PATH)}([A-Za-z0-9_-]+)"', read["HTML"])
    targets = {signer.verify(token, ClickLink).url for token in clicks}
    assert "https://shop.example.com/cart" in targets
    assert "https://shop.example.com/products/p-100" in targets
    [pixel] = re.findall(rf'src="{re.escape(PUBLIC + OPEN_PATH)}([A-Za-z0-9_-]+)"', read["HTML"])
    assert signer.verify(pixel, OpenLink).notification_id == message["X-Retain-Notification-Id"]


async def test_every_shipped_template_arrives(mailpit: LocalMailpit, inbox: MailpitInbox) -> None:
    config = _settings(mailpit.smtp_port)
    sends = journey_sends()
    delivery = SmtpDelivery(config)
    try:
        results = [await delivery.deliver(_email(config, template)) for template in sends]
    finally:
        await delivery.close()
    assert all(isinstance(result, Delivered) for result in results), results
    arrived = await inbox.wait_for(len(sends))
    assert len({summary["MessageID"] for summary in arrived}) == len(sends)
    assert delivery.connections_opened == 1  # one connection carried them all


async def test_500_emails_over_reused_connections_all_arrive(
    mailpit: LocalMailpit, inbox: MailpitInbox
) -> None:
    config = _settings(mailpit.smtp_port)  # 4 connections
    base = journey_sends()["cart_reminder_1"]
    messages = [
        _email(config, notification_id=f"{base.notification_id[:-4]}{i:04d}") for i in range(500)
    ]
    delivery = SmtpDelivery(config)
    try:
        began = time.perf_counter()
        results = await asyncio.gather(*(delivery.deliver(message) for message in messages))
        elapsed = time.perf_counter() - began
    finally:
        await delivery.close()
    assert all(isinstance(result, Delivered) for result in results)
    assert delivery.connections_opened <= config.smtp_connections
    arrived = await inbox.wait_for(500, wait_seconds=60)
    assert {f"<{summary['MessageID']}>" for summary in arrived} == {
        message["Message-ID"] for message in messages
    }
    rate = len(messages) / elapsed
    print(f"\n500 emails to Mailpit in {elapsed:.2f}s: {rate:.0f}/s")
    # Sanity only: the rate depends on the machine and on Mailpit (which on two cores spends
    # about three times our CPU per message). The benchmark measures it properly.
    assert rate > 100


# ---------------------------------------------------------------- refusals, TLS and login


async def test_a_refused_recipient_is_a_hard_bounce(strict_mailpit: MailpitServer) -> None:
    config = _settings(strict_mailpit.smtp_port)
    delivery = SmtpDelivery(config)
    try:
        bounced = await delivery.deliver(_email(config, to="nobody@elsewhere.test"))
        delivered = await delivery.deliver(_email(config))  # the same connection goes on
    finally:
        await delivery.close()
    assert isinstance(bounced, HardBounce)
    assert bounced.code == 550
    assert "mailbox unavailable" in bounced.text
    assert isinstance(delivered, Delivered)
    assert delivery.connections_opened == 1


async def test_starttls_with_a_private_ca_and_a_login(
    strict_mailpit: MailpitServer, certificates: Certificates
) -> None:
    config = _settings(
        strict_mailpit.smtp_port,
        smtp_tls="starttls",
        smtp_ca_file=certificates.ca,
        smtp_username="notify",
        smtp_password="secret",
    )
    inbox = strict_mailpit.inbox
    await inbox.delete_all()
    delivery = SmtpDelivery(config)
    try:
        result = await delivery.deliver(_email(config, template="welcome"))
    finally:
        await delivery.close()
    assert isinstance(result, Delivered), result
    [summary] = await inbox.wait_for(1)
    assert summary["Subject"] == "Welcome to Maison Verte, Zoë"


async def test_a_certificate_of_an_unknown_ca_is_a_temporary_failure(
    strict_mailpit: MailpitServer,
) -> None:
    config = _settings(strict_mailpit.smtp_port, smtp_tls="starttls")  # system CAs only
    delivery = SmtpDelivery(config)
    try:
        result = await delivery.deliver(_email(config))
        assert not await delivery.check()
    finally:
        await delivery.close()
    assert isinstance(result, TemporaryFailure)
    assert result.code is None
    assert "CERTIFICATE_VERIFY_FAILED" in result.text


async def test_a_refused_login_is_a_temporary_failure(scripted_smtp: Scripted) -> None:
    # A configuration mistake, not the address's: retried, never a bounce.
    server = await scripted_smtp(auth_reply="535 5.7.8 Authentication credentials invalid")
    config = _settings(server.port, smtp_username="notify", smtp_password="wrong")
    delivery = SmtpDelivery(config)
    try:
        result = await delivery.deliver(_email(config))
    finally:
        await delivery.close()
    assert result == TemporaryFailure(535, "5.7.8 Authentication credentials invalid")
    assert server.messages == []


async def test_implicit_tls(tls_mailpit: MailpitServer, certificates: Certificates) -> None:
    config = _settings(
        tls_mailpit.smtp_port,
        smtp_tls="tls",
        smtp_ca_file=certificates.ca,
        smtp_username="notify",
        smtp_password="secret",
    )
    inbox = tls_mailpit.inbox
    await inbox.delete_all()
    delivery = SmtpDelivery(config)
    try:
        assert await delivery.check()
        result = await delivery.deliver(_email(config, template="order_thank_you"))
    finally:
        await delivery.close()
    assert isinstance(result, Delivered), result
    [summary] = await inbox.wait_for(1)
    assert summary["Subject"] == "Thank you for your order o-1001"
    # Plain SMTP to a TLS-only port fails, temporarily.
    plain = SmtpDelivery(_settings(tls_mailpit.smtp_port, smtp_timeout_seconds=2))
    try:
        assert isinstance(await plain.deliver(_email(config)), TemporaryFailure)
    finally:
        await plain.close()


# ---------------------------------------------------------------- scripted answers


async def test_greylisting_is_a_temporary_failure(scripted_smtp: Scripted) -> None:
    server = await scripted_smtp(behaviours={EMAIL: "rcpt:451 4.7.1 Greylisted, try later"})
    delivery = SmtpDelivery(_settings(server.port))
    try:
        result = await delivery.deliver(_email(_settings(server.port)))
    finally:
        await delivery.close()
    assert result == TemporaryFailure(451, "4.7.1 Greylisted, try later")
    assert server.messages == []
    assert "RSET" in server.commands  # the envelope was reset, the connection kept


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            "data:554 5.7.1 Message rejected as spam",
            HardBounce(554, "5.7.1 Message rejected as spam"),
        ),
        ("data:552 5.3.4 Message too big", HardBounce(552, "5.3.4 Message too big")),
        (
            "data:452 4.3.1 Insufficient system storage",
            TemporaryFailure(452, "4.3.1 Insufficient system storage"),
        ),
        ("rcpt:550 5.1.1 No such user", HardBounce(550, "5.1.1 No such user")),
        ("rcpt:452 4.2.2 Mailbox full", TemporaryFailure(452, "4.2.2 Mailbox full")),
    ],
)
async def test_answers_to_the_message_and_the_recipient(
    scripted_smtp: Scripted, answer: str, expected: object
) -> None:
    server = await scripted_smtp(behaviours={EMAIL: answer})
    config = _settings(server.port)
    delivery = SmtpDelivery(config)
    try:
        assert await delivery.deliver(_email(config)) == expected
        server.behaviours.clear()
        assert isinstance(await delivery.deliver(_email(config)), Delivered)
    finally:
        await delivery.close()
    assert server.connections == 1  # the connection survived the refusal


async def test_a_connection_dropped_mid_message_is_a_temporary_failure(
    scripted_smtp: Scripted,
) -> None:
    server = await scripted_smtp(behaviours={EMAIL: "drop"})
    config = _settings(server.port)
    delivery = SmtpDelivery(config)
    try:
        result = await delivery.deliver(_email(config))
        assert isinstance(result, TemporaryFailure)
        assert result.code is None
        server.behaviours.clear()
        assert isinstance(await delivery.deliver(_email(config)), Delivered)
    finally:
        await delivery.close()
    assert server.connections == 2
    assert len(server.messages) == 1  # never sent twice by the client itself


async def test_a_silent_server_times_out(scripted_smtp: Scripted) -> None:
    server = await scripted_smtp(behaviours={EMAIL: "silent"})
    config = _settings(server.port, smtp_timeout_seconds=0.5)
    delivery = SmtpDelivery(config)
    try:
        began = time.monotonic()
        result = await delivery.deliver(_email(config))
    finally:
        await delivery.close()
    assert isinstance(result, TemporaryFailure)
    assert result.code is None
    assert "Timed out" in result.text or "Timeout" in result.text
    assert time.monotonic() - began < 5


async def test_a_refused_connection_is_a_temporary_failure() -> None:
    config = _settings(free_port())  # nothing listens there
    delivery = SmtpDelivery(config)
    try:
        result = await delivery.deliver(_email(config))
        assert not await delivery.check()
    finally:
        await delivery.close()
    assert isinstance(result, TemporaryFailure)
    assert result.code is None


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"greeting": "554 5.3.2 No SMTP service here"},
            TemporaryFailure(554, "5.3.2 No SMTP service here"),
        ),
        (
            {"mail_replies": ["553 5.7.1 Sender rejected"]},
            TemporaryFailure(553, "5.7.1 Sender rejected"),
        ),
        ({"mail_replies": ["451 4.3.0 Try later"]}, TemporaryFailure(451, "4.3.0 Try later")),
    ],
)
async def test_refusals_before_the_recipient_are_temporary_whatever_their_code(
    scripted_smtp: Scripted, options: dict[str, Any], expected: TemporaryFailure
) -> None:
    # A refused greeting or sender is about the server or our configuration, not the address:
    # it must never suppress the address.
    server = await scripted_smtp(**options)
    config = _settings(server.port)
    delivery = SmtpDelivery(config)
    try:
        result = await delivery.deliver(_email(config))
    finally:
        await delivery.close()
    assert result == expected


async def test_a_server_that_drops_idle_connections_is_reconnected_to(
    scripted_smtp: Scripted,
) -> None:
    server = await scripted_smtp(close_after_message=True)
    config = _settings(server.port)
    delivery = SmtpDelivery(config)
    try:
        for _ in range(3):
            assert isinstance(await delivery.deliver(_email(config)), Delivered)
            await asyncio.sleep(0.05)  # the server's close reaches the client
    finally:
        await delivery.close()
    assert server.connections == 3
    assert len(server.messages) == 3


async def test_a_421_before_the_message_is_sent_again_on_a_new_connection(
    scripted_smtp: Scripted,
) -> None:
    server = await scripted_smtp()
    config = _settings(server.port)
    delivery = SmtpDelivery(config)
    try:
        assert isinstance(await delivery.deliver(_email(config)), Delivered)
        server.mail_replies.append("421 4.3.2 Service shutting down")
        assert isinstance(await delivery.deliver(_email(config)), Delivered)
    finally:
        await delivery.close()
    assert server.connections == 2
    assert len(server.messages) == 2


async def test_the_login_is_sent_when_configured(scripted_smtp: Scripted) -> None:
    server = await scripted_smtp()
    config = _settings(server.port, smtp_username="notify", smtp_password="s3cret")
    delivery = SmtpDelivery(config)
    try:
        assert isinstance(await delivery.deliver(_email(config)), Delivered)
    finally:
        await delivery.close()
    assert len(server.auth) == 1
    assert server.auth[0].startswith("AUTH")


async def test_concurrent_deliveries_share_the_pool(scripted_smtp: Scripted) -> None:
    server = await scripted_smtp()
    config = _settings(server.port, smtp_connections=3)
    delivery = SmtpDelivery(config)
    try:
        results = await asyncio.gather(*(delivery.deliver(_email(config)) for _ in range(60)))
    finally:
        await delivery.close()
    assert all(isinstance(result, Delivered) for result in results)
    assert server.connections == 3
    assert len(server.messages) == 60
    assert server.commands.count("QUIT") == 3  # close() said goodbye on each


# A control character in an address (any profile may hold one: an identify's traits.email)
# made aiosmtplib raise ValueError, which killed the sender and so the notify process.
@pytest.mark.parametrize("to", ["nobody", "a\x06b@example.com", "del\x7f@example.com"])
async def test_an_unusable_address_is_a_hard_bounce_without_a_connection(
    scripted_smtp: Scripted, to: str
) -> None:
    server = await scripted_smtp()
    config = _settings(server.port)
    delivery = SmtpDelivery(config)
    try:
        message = _email(config)
        message.replace_header("To", to)
        result = await delivery.deliver(message)
    finally:
        await delivery.close()
    assert isinstance(result, HardBounce)
    assert result.code is None
    assert server.connections == 0


async def test_a_command_the_smtp_client_will_not_send_is_a_hard_bounce(
    scripted_smtp: Scripted,
) -> None:
    # Beyond the address check: whatever aiosmtplib refuses to send (it raises ValueError) is
    # this message's bounce, not the sender's crash; the connection, left mid-transaction,
    # is not used again.
    server = await scripted_smtp()
    config = _settings(server.port)
    delivery = SmtpDelivery(config)
    try:
        refused = await delivery._send(
            "shop@example.com", ["a\x06b@example.com"], b"Subject: x\r\n\r\nx", [], "test"
        )
        after = await delivery.deliver(_email(config))
    finally:
        await delivery.close()
    assert isinstance(refused, HardBounce)
    assert "control character" in refused.text
    assert isinstance(after, Delivered)
    assert server.connections == 2


async def test_a_closed_delivery_refuses_to_send(scripted_smtp: Scripted) -> None:
    server = await scripted_smtp()
    config = _settings(server.port)
    delivery = SmtpDelivery(config)
    await delivery.close()
    with pytest.raises(RuntimeError, match="closed"):
        await delivery.deliver(_email(config))
