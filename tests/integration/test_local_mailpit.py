"""The local Mailpit: built once and cached, catches real SMTP mail, serves it through its REST
API and a working web inbox, keeps it across restarts and stops without leaving a process.

The suite's Mailpit (the `mailpit` and `inbox` fixtures) serves the mail tests; the lifecycle
tests start their own server because they stop it.
"""

import os
import re
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aiosmtplib
import httpx
import psutil
import pytest

from services.devstack.errors import DevStackError
from services.devstack.mailpit import MAILPIT_VERSION, LocalMailpit, ensure_mailpit, mailpit_binary
from services.devstack.ports import LOOPBACK, free_port, is_listening
from tests.conftest import CACHE_DIR
from tests.integration.helpers import MailpitInbox

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
UNSUBSCRIBE = "<https://retain.test/u/tok-1>, <mailto:unsubscribe@retain.test?subject=tok-1>"


def _lifecycle_email(subject: str) -> EmailMessage:
    """An email shaped like notify's: text and HTML parts, one-click unsubscribe headers."""
    message = EmailMessage()
    message["From"] = "Retain Shop <shop@retain.test>"
    message["To"] = "Zoë Customer <zoe@example.com>"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(idstring="cart-1", domain="retain.test")
    message["List-Unsubscribe"] = UNSUBSCRIBE
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content("Your cart is waiting: 2 items, 42.50 EUR.\n")
    message.add_alternative(
        "<html><body><p>Your cart is <b>waiting</b>: 2 items, 42.50&nbsp;EUR.</p></body></html>",
        subtype="html",
    )
    return message


async def test_an_email_sent_over_smtp_is_read_back_through_the_api(
    mailpit: LocalMailpit, inbox: MailpitInbox
) -> None:
    sent = _lifecycle_email("Zoë, your cart misses you ✨")
    # Any login is accepted, so notify configured with credentials works against it unchanged.
    await aiosmtplib.send(
        sent,
        hostname=mailpit.smtp_host,
        port=mailpit.smtp_port,
        username="notify",
        password="anything",
        timeout=10,
    )

    [summary] = await inbox.wait_for(1)
    assert summary["Subject"] == "Zoë, your cart misses you ✨"
    assert f"<{summary['MessageID']}>" == sent["Message-ID"]
    assert summary["To"] == [{"Name": "Zoë Customer", "Address": "zoe@example.com"}]

    headers = await inbox.headers(summary["ID"])
    assert headers["Message-Id"] == [sent["Message-ID"]]
    assert headers["List-Unsubscribe"] == [UNSUBSCRIBE]
    assert headers["List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]

    message = await inbox.message(summary["ID"])
    assert message["Text"].strip() == "Your cart is waiting: 2 items, 42.50 EUR."
    assert "Your cart is <b>waiting</b>" in message["HTML"]
    assert message["From"] == {"Name": "Retain Shop", "Address": "shop@retain.test"}

    await inbox.delete_all()
    assert await inbox.messages() == []


async def test_the_web_inbox_serves_its_built_assets(mailpit: LocalMailpit) -> None:
    """Mailpit's Go module carries the inbox as sources only; unbuilt, the page stays blank."""
    async with httpx.AsyncClient(base_url=mailpit.ui_url, timeout=10, trust_env=False) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="(/dist/[^"]+)"', page.text)
        assert {Path(asset.split("?")[0]).suffix for asset in assets} >= {".js", ".css"}, page.text
        for asset in assets:
            answer = await client.get(asset)
            assert answer.status_code == 200, asset
            assert len(answer.content) > 50_000, (asset, len(answer.content))
        info = (await client.get("/api/v1/info")).json()
    assert info["Version"] == MAILPIT_VERSION


# ---------------------------------------------------------------- one server's lifecycle


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalMailpit]:
    smtp_port, ui_port = _two_ports()
    mailpit = LocalMailpit(tmp_path / "mailpit", CACHE_DIR, smtp_port=smtp_port, ui_port=ui_port)
    try:
        yield mailpit
    finally:
        mailpit.stop()  # also when an assertion failed half way: no server outlives the test


async def test_mail_survives_a_restart_and_stop_leaves_no_process(server: LocalMailpit) -> None:
    server.start()
    assert server.is_running()
    pid = int(server.pid_file.read_text())
    server.start()  # already running here: nothing to do
    assert int(server.pid_file.read_text()) == pid
    _send_plain(server, "kept across restarts")

    # `make down` stops the server from another process, knowing only the data folder.
    _stop_from_another_process(server)
    assert not server.is_running()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not is_listening(server.smtp_port)
    assert not is_listening(server.ui_port)
    assert not server.pid_file.exists()

    server.start()
    [summary] = await MailpitInbox(server.ui_url).wait_for(1)
    assert summary["Subject"] == "kept across restarts"

    pid = int(server.pid_file.read_text())
    server.stop()
    assert not psutil.pid_exists(pid)  # this process started it, and reaped it
    assert not is_listening(server.smtp_port)
    assert not is_listening(server.ui_port)
    assert _processes_using(server.data_dir) == []
    server.stop()  # stopping a stopped server is a no-op


@pytest.mark.parametrize("busy", ["smtp", "ui"])
def test_start_refuses_a_port_in_use(tmp_path: Path, busy: str) -> None:
    with _squatter() as taken:
        other = free_port()
        ports = (taken, other) if busy == "smtp" else (other, taken)
        mailpit = LocalMailpit(tmp_path, CACHE_DIR, smtp_port=ports[0], ui_port=ports[1])
        with pytest.raises(DevStackError, match=f"port {taken} is in use"):
            mailpit.start()
    assert not mailpit.pid_file.exists()


def test_stale_pid_file_is_not_a_running_server(tmp_path: Path) -> None:
    # The pid of a live process that is not Mailpit, e.g. a reused pid after a reboot.
    mailpit = LocalMailpit(tmp_path, CACHE_DIR, smtp_port=free_port(), ui_port=free_port())
    mailpit.pid_file.write_text(f"{os.getpid()}\n")
    assert not mailpit.is_running()
    mailpit.stop()
    assert not mailpit.pid_file.exists()


def test_a_server_that_never_gets_ready_is_killed_and_reported_with_its_log(
    server: LocalMailpit,
) -> None:
    server.data_dir.mkdir(parents=True)
    server.database.write_bytes(b"not a database" * 1000)  # Mailpit retries, never ready
    with pytest.raises(DevStackError, match="Mailpit did not answer") as failure:
        server.start(timeout=3)
    assert str(server.log_file) in str(failure.value)
    assert "file is not a database" in str(failure.value)
    assert not server.pid_file.exists()
    assert _processes_using(server.data_dir) == []


# ---------------------------------------------------------------- the build


def test_a_cached_build_is_reused_without_go_or_npm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = ensure_mailpit(CACHE_DIR)  # built before the tests ran (tests/conftest.py)
    assert binary == mailpit_binary(CACHE_DIR)
    built_at = binary.stat().st_mtime_ns
    monkeypatch.setenv("PATH", str(tmp_path))  # no go, node or npm to rebuild with
    began = time.monotonic()
    assert ensure_mailpit(CACHE_DIR) == binary
    assert ensure_mailpit(Path(os.path.relpath(CACHE_DIR))) == binary  # always an absolute path
    assert time.monotonic() - began < 1.0
    assert binary.stat().st_mtime_ns == built_at


def test_missing_go_is_a_readable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to run in there
    with pytest.raises(DevStackError, match=r"go not found.*Go 1\.24.*RETAIN_SMTP_HOST"):
        ensure_mailpit(tmp_path / "cache")


def test_missing_node_is_a_readable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tools(tmp_path, monkeypatch, go="exit 0")
    with pytest.raises(DevStackError, match=r"node not found.*Node\.js 18.*RETAIN_SMTP_HOST"):
        ensure_mailpit(tmp_path / "cache")


def test_old_node_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tools(tmp_path, monkeypatch, go="exit 0", node="echo v16.20.2", npm="exit 0")
    with pytest.raises(DevStackError, match=r"is Node\.js v16\.20\.2, too old"):
        ensure_mailpit(tmp_path / "cache")


def test_failed_build_shows_its_output_and_leaves_nothing_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    go = "echo 'go: github.com/axllent/mailpit: 403 Forbidden' >&2; exit 1"
    _fake_tools(tmp_path, monkeypatch, go=go, node="echo v20.19.2", npm="exit 0")
    cache = tmp_path / "cache"
    with pytest.raises(DevStackError, match="`go mod download` failed") as failure:
        ensure_mailpit(cache)
    assert "403 Forbidden" in str(failure.value)
    assert not mailpit_binary(cache).parent.exists()  # so the next start builds again
    assert list(cache.glob(".*partial*")) == []


def test_a_module_with_another_checksum_is_not_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    go = f'echo \'{{"Dir": "{tmp_path}", "Sum": "h1:tampered="}}\''
    _fake_tools(tmp_path, monkeypatch, go=go, node="echo v20.19.2", npm="exit 1")
    with pytest.raises(DevStackError, match=r"checksum h1:tampered=, not the pinned"):
        ensure_mailpit(tmp_path / "cache")


# ---------------------------------------------------------------- helpers


def _two_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


@contextmanager
def _squatter() -> Iterator[int]:
    """A socket listening on a free loopback port, so a server cannot bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        yield sock.getsockname()[1]


def _send_plain(server: LocalMailpit, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "shop@retain.test"
    message["To"] = "ada@example.com"
    message["Subject"] = subject
    message.set_content("hello\n")
    with smtplib.SMTP(server.smtp_host, server.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)


def _stop_from_another_process(server: LocalMailpit) -> None:
    code = (
        "import sys; from pathlib import Path; from services.devstack.mailpit import LocalMailpit; "
        "LocalMailpit(Path(sys.argv[1]), Path(sys.argv[2])).stop()"
    )
    args = [str(server.data_dir), str(server.cache_dir)]
    subprocess.run([sys.executable, "-c", code, *args], check=True, cwd=REPO_ROOT, timeout=60)


def _processes_using(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        command = " ".join(process.info["cmdline"] or [])
        if str(data_dir) in command and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def _fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **scripts: str) -> None:
    """PATH holding only the named tools, each a shell script with the given body."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in scripts.items():
        tool = bin_dir / name
        tool.write_text(f"#!/bin/sh\n{body}\n")
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
