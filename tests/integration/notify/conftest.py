"""Real SMTP servers for notify's delivery tests.

- the suite's Mailpit (`mailpit`, `inbox`): accepts everything, and shows what arrived;
- `strict_mailpit`: a second Mailpit that refuses (550) every recipient outside example.com,
  offers STARTTLS with a certificate of our own CA, and accepts a login only over TLS;
- `tls_mailpit`: a third one that speaks only implicit TLS (as on port 465);
- `scripted_smtp`: a small SMTP server written here, over real TCP, answering what a test
  scripts (451 greylisting, 554 on DATA, 421 before closing, a connection dropped mid-message,
  a server that goes silent), for the answers Mailpit cannot be made to give.

Each server listens on a free loopback port and is stopped by the fixture that started it.
"""

import asyncio
import contextlib
import datetime as dt
import ipaddress
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.ext.asyncio import AsyncEngine

from services.devstack.mailpit import LocalMailpit, ensure_mailpit
from services.devstack.ports import LOOPBACK, free_port
from services.runtime.db import create_engine
from services.runtime.settings import ServiceSettings
from tests.conftest import CACHE_DIR
from tests.integration.helpers import MailpitInbox, RunningService, running_service
from tests.integration.profile.conftest import (  # noqa: F401 (the pipeline's fixtures)
    ingest,
    profile,
    storefront,
    write_key,
)

# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Certificates:
    ca: Path
    """PEM of the CA that signed `cert`: what RETAIN_SMTP_CA_FILE names."""
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)

    def name(text: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("Retain test CA"))
        .issuer_name(name("Retain test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = Certificates(ca=folder / "ca.pem", cert=folder / "server.pem", key=folder / "key.pem")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


# ---------------------------------------------------------------- more Mailpits


@dataclass(frozen=True)
class MailpitServer:
    smtp_port: int
    ui_url: str

    @property
    def inbox(self) -> MailpitInbox:
        return MailpitInbox(self.ui_url)


@contextlib.contextmanager
def _mailpit(folder: Path, *options: str) -> Iterator[MailpitServer]:
    """A Mailpit process of our own with extra options, stopped (by its pid) at the end. The
    fixtures using it request the suite's `mailpit`, so the binary is built (or its build
    error reported) before any test runs."""
    binary = ensure_mailpit(CACHE_DIR)
    smtp_port, ui_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MP_")}
    command = [
        str(binary),
        f"--smtp={LOOPBACK}:{smtp_port}",
        f"--listen={LOOPBACK}:{ui_port}",
        f"--database={folder / 'mailpit.db'}",
        "--disable-version-check",
        "--smtp-disable-rdns",
        *options,
    ]
    with (folder / "mailpit.log").open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    try:
        _wait_listening(process, smtp_port, folder / "mailpit.log")
        yield MailpitServer(smtp_port, f"http://{LOOPBACK}:{ui_port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"Mailpit exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=1):
            return
        time.sleep(0.05)
    raise AssertionError(f"Mailpit not listening on {port}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def strict_mailpit(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates, mailpit: LocalMailpit
) -> Iterator[MailpitServer]:
    """Refuses (550) recipients outside example.com; STARTTLS offered; login only over TLS."""
    with _mailpit(
        tmp_path_factory.mktemp("strict-mailpit"),
        r"--smtp-allowed-recipients=@example\.com$",
        f"--smtp-tls-cert={certificates.cert}",
        f"--smtp-tls-key={certificates.key}",
        "--smtp-auth-accept-any",
    ) as server:
        yield server


@pytest.fixture(scope="session")
def tls_mailpit(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates, mailpit: LocalMailpit
) -> Iterator[MailpitServer]:
    """Implicit TLS only (as on port 465); any login."""
    with _mailpit(
        tmp_path_factory.mktemp("tls-mailpit"),
        f"--smtp-tls-cert={certificates.cert}",
        f"--smtp-tls-key={certificates.key}",
        "--smtp-require-tls",
        "--smtp-auth-accept-any",
    ) as server:
        yield server


# ---------------------------------------------------------------- a scripted SMTP server


@dataclass
class ScriptedSmtp:
    """An SMTP server that answers as scripted, per recipient address:

    - `"rcpt:451 4.7.1 Greylisted"`: this reply to RCPT TO;
    - `"data:554 5.7.1 Spam"`: this reply once the message is sent;
    - `"drop"`: close the connection once the message is sent, without replying;
    - `"silent"`: never reply once the message is sent.

    `mail_replies`: one-off replies to the next MAIL FROM commands (a 421 also closes the
    connection); `auth_reply`: the reply to AUTH; `greeting`: the first line (anything but 220
    closes the connection). `close_after_message`: close each connection once its message is
    accepted, as a server that drops idle clients would. Everything received is recorded:
    `messages` are the bodies accepted, `received` all bodies, whatever the answer.
    """

    behaviours: dict[str, str] = field(default_factory=dict)
    mail_replies: list[str] = field(default_factory=list)
    auth_reply: str = "235 2.7.0 Authentication successful"
    greeting: str = "220 scripted.test ESMTP"
    close_after_message: bool = False
    port: int = 0
    connections: int = 0
    messages: list[bytes] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)  # every body, accepted or not
    auth: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _sessions: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        self.connections += 1
        try:
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._sessions.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(text: str) -> None:
            writer.write(text.encode() + b"\r\n")
            await writer.drain()

        await reply(self.greeting)
        if not self.greeting.startswith("220"):
            return
        recipients: list[str] = []
        while line := await reader.readline():
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            self.commands.append(command)
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                await reply("250-scripted.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME")
            elif verb == "HELO":
                await reply("250 scripted.test")
            elif verb == "AUTH":
                self.auth.append(command)
                await reply(self.auth_reply)
            elif verb == "MAIL":
                recipients = []
                scripted = self.mail_replies.pop(0) if self.mail_replies else "250 2.1.0 Ok"
                await reply(scripted)
                if scripted.startswith("421"):
                    return
            elif verb == "RCPT":
                address = command.partition(":")[2].strip().strip("<>").split(">")[0]
                behaviour = self.behaviours.get(address, "")
                if behaviour.startswith("rcpt:"):
                    await reply(behaviour.removeprefix("rcpt:"))
                else:
                    recipients.append(address)
                    await reply("250 2.1.5 Ok")
            elif verb == "DATA":
                await reply("354 End data with <CR><LF>.<CR><LF>")
                body = await reader.readuntil(b"\r\n.\r\n")
                self.received.append(body)
                behaviour = next(
                    (self.behaviours[r] for r in recipients if r in self.behaviours), ""
                )
                if behaviour == "drop":
                    return
                if behaviour == "silent":
                    await asyncio.sleep(3600)
                if behaviour.startswith("data:"):
                    await reply(behaviour.removeprefix("data:"))
                    continue
                self.messages.append(body)
                await reply(f"250 2.0.0 Ok: queued as m{len(self.messages)}")
                if self.close_after_message:
                    return
            elif verb in ("RSET", "NOOP"):
                await reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                await reply("221 2.0.0 Bye")
                return
            else:
                await reply("502 5.5.2 Command not recognized")


@pytest.fixture
async def scripted_smtp() -> AsyncIterator[Callable[..., Awaitable[ScriptedSmtp]]]:
    """Start scripted servers: `server = await scripted_smtp(behaviours={...})`."""
    started: list[ScriptedSmtp] = []

    async def start(**options: object) -> ScriptedSmtp:
        server = ScriptedSmtp(**options)  # type: ignore[arg-type]
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


def unused_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    return free_port()


@pytest.fixture
async def database(settings: ServiceSettings) -> AsyncIterator[AsyncEngine]:
    """notify's tables, read directly."""
    engine = create_engine(settings)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def notify(
    settings: ServiceSettings,
    profile: RunningService,  # noqa: F811 (the fixture imported above)
    mailpit: LocalMailpit,
) -> Iterator[RunningService]:
    """A notify process behind the real ingest and profile, sending to the suite's Mailpit."""
    with running_service(
        "notify",
        settings,
        RETAIN_SMTP_HOST=mailpit.smtp_host,
        RETAIN_SMTP_PORT=str(mailpit.smtp_port),
    ) as service:
        yield service
