"""A local Mailpit: the SMTP server that catches every email the local stack sends, and the inbox
(web UI and REST API) where a person or a test reads them.

Mailpit is built from its Go module, once per machine, into the cache folder (RETAIN_CACHE_DIR,
`.cache/` by default). The module carries the web inbox as sources only, so the build compiles
them first with npm, exactly as Mailpit's own release build does (`npm ci` from its
package-lock.json, then its `build` script), and `go build` then embeds them in the binary. The
local stack therefore needs Go and Node.js with npm, but no Docker. The server is a detached
process recorded in <data_dir>/mailpit.pid, so a later command (`make down`) can stop it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx
import psutil

from services.devstack.errors import DevStackError
from services.devstack.ports import LOOPBACK, ensure_port_free

log = logging.getLogger(__name__)

# The pin, in one place: the module version and the go.sum hash of its source (`go mod download
# -json` prints it as "Sum"). Bump them together; the cached build follows on its own.
# v1.33.1, the newest on the module proxy, cannot be built here: its package-lock.json pins npm
# packages the npm registry does not serve (rapidoc 12.1.0, sass-embedded 1.108.1).
MAILPIT_MODULE = "github.com/axllent/mailpit"
MAILPIT_VERSION = "v1.27.11"
MAILPIT_SUM = "h1:57cO1Tlekptm80OBxry0wW/9Nc1WxzEjh12SC2LCrx0="

MIN_NODE = 18  # esbuild, which the inbox's build script runs, needs Node.js 18 or newer
_LDFLAGS = f"-s -w -X {MAILPIT_MODULE}/config.Version={MAILPIT_VERSION}"
_NPM_CI = ("ci", "--ignore-scripts", "--include=dev", "--no-audit", "--no-fund")
_NPM_BUILD = ("run", "build")
# Files the inbox's index page loads; without them the page in the browser stays blank.
_UI_ASSETS = ("server/ui/dist/app.js", "server/ui/dist/app.css")

_OWN_SERVER_HINT = (
    "or set RETAIN_SMTP_HOST (and RETAIN_SMTP_PORT) to use an SMTP server of your own"
)
_GO_HINT = f"install Go 1.24 or newer (https://go.dev/dl/), {_OWN_SERVER_HINT}"
_NODE_HINT = (
    f"install Node.js {MIN_NODE} or newer with npm (e.g. apt-get install nodejs npm), "
    f"{_OWN_SERVER_HINT}"
)
_COMPLETE_MARKER = ".complete"
_LOG_TAIL_LINES = 20

Progress = Callable[[str], None]


# ---------------------------------------------------------------- the build


def mailpit_binary(cache_dir: Path) -> Path:
    """Where ensure_mailpit puts the binary of the pinned version."""
    return _build_dir(cache_dir) / "mailpit"


def ensure_mailpit(cache_dir: Path, progress: Progress | None = None) -> Path:
    """The Mailpit binary, built into cache_dir on first use and reused from then on.

    The build runs in a temporary folder (the Go module cache is read-only) and its result is
    renamed into place only once complete, so an interrupted build leaves nothing that looks
    usable and is simply redone. A lock makes a second process wait for a build under way
    instead of starting its own. `progress` hears about a build, which takes minutes.
    """
    cache_dir = cache_dir.absolute()  # the server runs in its data folder, not here
    binary = mailpit_binary(cache_dir)
    if _build_complete(binary.parent):
        return binary
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _build_lock(cache_dir, progress):
        if _build_complete(binary.parent):  # built by the process we waited for
            return binary
        go, npm = _find_go(), _find_npm()
        folder = binary.parent
        build_log = cache_dir / f"{folder.name}.build.log"
        _say(
            progress,
            f"building Mailpit {MAILPIT_VERSION} (the local SMTP server and inbox) into {folder}, "
            f"once: go and npm, a few minutes; log {build_log}",
        )
        began = time.monotonic()
        _remove_abandoned_scratch(cache_dir, folder.name)
        scratch = cache_dir / f".{folder.name}.partial-{os.getpid()}"
        build_log.write_text(f"---- {_stamp()} building Mailpit {MAILPIT_VERSION}\n")
        try:
            scratch.mkdir()
            _build(go, npm, scratch / binary.name, build_log, progress)
            (scratch / _COMPLETE_MARKER).write_text(_build_identity())
            shutil.rmtree(folder, ignore_errors=True)  # a build made by another recipe
            scratch.rename(folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if not _build_complete(folder):
            raise DevStackError(f"Mailpit could not be placed in {folder}; remove it and retry")
        _say(progress, f"Mailpit {MAILPIT_VERSION} built in {time.monotonic() - began:.0f}s")
    return binary


def _build_dir(cache_dir: Path) -> Path:
    return cache_dir / f"mailpit-{MAILPIT_VERSION.removeprefix('v')}"


def _build_identity() -> str:
    """What the cached binary was made from; another pin or recipe means another build."""
    recipe = [f"{MAILPIT_MODULE}@{MAILPIT_VERSION}", MAILPIT_SUM, _LDFLAGS, *_NPM_CI, *_NPM_BUILD]
    return " ".join(recipe)


def _build_complete(folder: Path) -> bool:
    marker = folder / _COMPLETE_MARKER
    return (
        marker.is_file()
        and marker.read_text() == _build_identity()
        and os.access(folder / "mailpit", os.X_OK)
    )


@contextmanager
def _build_lock(cache_dir: Path, progress: Progress | None) -> Iterator[None]:
    lock_file = cache_dir / f".{_build_dir(cache_dir).name}.lock"
    with lock_file.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(progress, f"waiting for another process that is building Mailpit in {cache_dir}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_abandoned_scratch(cache_dir: Path, name: str) -> None:
    """Drop scratch folders of builds whose process was killed; leave running ones alone."""
    for scratch in cache_dir.glob(f".{name}.partial-*"):
        owner = scratch.name.rpartition("-")[2]
        building = owner.isdigit() and int(owner) != os.getpid() and psutil.pid_exists(int(owner))
        if not building:
            shutil.rmtree(scratch, ignore_errors=True)


def _find_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise DevStackError(f"go not found, so Mailpit cannot be built: {_GO_HINT}")
    return go


def _find_npm() -> str:
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        missing = "npm" if node else "node"
        raise DevStackError(
            f"{missing} not found, so Mailpit's inbox cannot be built: {_NODE_HINT}"
        )
    version = (_output([node, "--version"]) or "").strip()  # v20.19.2
    match = re.match(r"v(\d+)\.", version)
    if match is None:
        raise DevStackError(f"{node} does not run (node --version failed): {_NODE_HINT}")
    if int(match.group(1)) < MIN_NODE:
        raise DevStackError(
            f"{node} is Node.js {version}, too old to build Mailpit's inbox: {_NODE_HINT}"
        )
    return npm


def _build(go: str, npm: str, output: Path, build_log: Path, progress: Progress | None) -> None:
    with tempfile.TemporaryDirectory(prefix="retain-mailpit-") as tmp:
        work = Path(tmp)
        source = _copy_writable(_download_module(go, work, build_log), work / "mailpit")
        _check_go_version(go, source)
        # Install scripts stay off: the build needs none (esbuild finds its binary without
        # one), and some in the tree would compile native code or report to a third party.
        npm_env = os.environ | {"npm_config_update_notifier": "false"}
        _say(progress, "Mailpit build: the inbox's JavaScript (npm ci, npm run build)")
        _step([npm, *_NPM_CI], source, build_log, npm_env, timeout=900, what="npm ci")
        _step([npm, *_NPM_BUILD], source, build_log, npm_env, timeout=600, what="npm run build")
        for asset in _UI_ASSETS:
            if not (source / asset).is_file() or (source / asset).stat().st_size < 10_000:
                raise DevStackError(
                    f"Mailpit's inbox build (npm run build) did not produce {asset}; "
                    f"log {build_log}"
                )
        _say(progress, "Mailpit build: the server (go build)")
        command = [go, "build", "-trimpath", "-buildvcs=false", "-ldflags", _LDFLAGS]
        command += ["-o", str(output), "."]
        _step(command, source, build_log, _go_env(), timeout=1800, what="go build")


def _go_env() -> dict[str, str]:
    """The caller's Go settings (proxy, caches) minus what would change this build."""
    env = {k: v for k, v in os.environ.items() if k not in ("GOOS", "GOARCH", "GOFLAGS")}
    # A static binary, and nothing read from a go.work or a VCS checkout around the build.
    return env | {"CGO_ENABLED": "0", "GO111MODULE": "on", "GOWORK": "off", "GOFLAGS": ""}


def _download_module(go: str, work: Path, build_log: Path) -> Path:
    """The pinned module's source in the (read-only) Go module cache, its checksum verified."""
    module = f"{MAILPIT_MODULE}@{MAILPIT_VERSION}"
    command = [go, "mod", "download", "-json", module]
    result = _step(command, work, build_log, _go_env(), timeout=600, what="go mod download")
    try:
        info = json.loads(result)
        found, source = info["Sum"], Path(info["Dir"])
    except (ValueError, KeyError, TypeError):
        raise DevStackError(
            f"`go mod download` gave no source for {module}; log {build_log}"
        ) from None
    if found != MAILPIT_SUM:
        raise DevStackError(
            f"{module} from the Go module proxy has checksum {found}, not the pinned "
            f"{MAILPIT_SUM} (services/devstack/mailpit.py); refusing to build it"
        )
    return source


def _copy_writable(source: Path, target: Path) -> Path:
    """Copy the module out of the read-only module cache; npm and esbuild write into it."""
    shutil.copytree(source, target, symlinks=True)
    for root, dirs, files in os.walk(target):
        for name in (root, *(os.path.join(root, entry) for entry in dirs + files)):
            mode = os.lstat(name).st_mode
            if not stat.S_ISLNK(mode):
                os.chmod(name, stat.S_IMODE(mode) | stat.S_IWUSR)
    return target


def _check_go_version(go: str, source: Path) -> None:
    match = re.search(r"^go (\d+)\.(\d+)(?:\.(\d+))?\s*$", (source / "go.mod").read_text(), re.M)
    have = re.match(r"go(\d+)\.(\d+)(?:\.(\d+))?", _output([go, "env", "GOVERSION"]) or "")
    if match is None or have is None:
        return  # a development toolchain or an unusual go.mod: let go build decide
    needed = tuple(int(part or 0) for part in match.groups())
    if tuple(int(part or 0) for part in have.groups()) < needed:
        wanted = ".".join(str(part) for part in needed)
        raise DevStackError(
            f"{go} is {have.group(0)}, but Mailpit {MAILPIT_VERSION} needs Go {wanted} or newer: "
            f"{_GO_HINT}"
        )


def _step(
    command: list[str], cwd: Path, build_log: Path, env: dict[str, str], timeout: float, what: str
) -> str:
    """Run one build step, its output appended to the build log; returns its stdout."""
    with build_log.open("a") as log_file:
        log_file.write(f"---- {_stamp()} {' '.join(command)}\n")
        log_file.flush()
        try:
            result = subprocess.run(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DevStackError(
                f"building Mailpit: `{what}` took more than {timeout / 60:.0f} minutes; check "
                f"the network, {_OWN_SERVER_HINT}. Log {build_log}"
            ) from None
        log_file.write(result.stdout)
    if result.returncode != 0:
        raise DevStackError(
            f"building Mailpit {MAILPIT_VERSION}: `{what}` failed (exit {result.returncode}); "
            f"see the output below, {_OWN_SERVER_HINT}. {_tail(build_log)}\nFull log: {build_log}"
        )
    return result.stdout


def _output(command: list[str]) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def _say(progress: Progress | None, message: str) -> None:
    log.info("%s", message)
    if progress is not None:
        progress(message)


# ---------------------------------------------------------------- the server


class LocalMailpit:
    """One Mailpit process for one data_dir; the pid file makes it stoppable from anywhere.

    SMTP and the inbox (web UI and REST API under /api/v1) listen on 127.0.0.1 only; mail is
    kept in <data_dir>/mailpit.db across restarts. Any SMTP login is accepted, without TLS, so a
    sender configured with credentials works against it unchanged.
    """

    def __init__(
        self,
        data_dir: Path,
        cache_dir: Path,
        smtp_port: int = 1025,
        ui_port: int = 8025,
        log_file: Path | None = None,
        progress: Progress | None = None,
        options: Sequence[str] = (),
    ) -> None:
        """`options`: further Mailpit flags, e.g. `--max=0` to keep every message (Mailpit
        keeps the newest 500 by default)."""
        self.data_dir = data_dir.resolve()
        self.cache_dir = cache_dir.absolute()
        self.smtp_port = smtp_port
        self.ui_port = ui_port
        self.log_file = (log_file or self.data_dir / "mailpit.log").resolve()
        self.progress = progress
        self.options = tuple(options)
        self.database = self.data_dir / "mailpit.db"
        self.pid_file = self.data_dir / "mailpit.pid"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def smtp_host(self) -> str:
        return LOOPBACK

    @property
    def ui_url(self) -> str:
        """The inbox in a browser; the REST API is under {ui_url}/api/v1."""
        return f"http://{LOOPBACK}:{self.ui_port}"

    def is_running(self) -> bool:
        return self._server_process() is not None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (building it on first use) and return once it serves SMTP and HTTP."""
        if self.is_running():
            self._check_running_here()
            return
        if self.smtp_port == self.ui_port:
            raise DevStackError(
                f"Mailpit needs two ports, but SMTP and the inbox are both {self.ui_port}"
            )
        ensure_port_free(self.smtp_port, "Mailpit's SMTP server")
        ensure_port_free(self.ui_port, "Mailpit's inbox")
        binary = ensure_mailpit(self.cache_dir, self.progress)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._reap()  # a server this object started before, which has exited since
        self.pid_file.unlink(missing_ok=True)  # stale: is_running() said nothing runs
        self._spawn(binary)
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            # Also on Ctrl-C: a half-started server must not outlive the command.
            self._kill()
            raise

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM: it closes its database), or kill it after timeout."""
        process = self._server_process()
        if process is not None:
            process.terminate()
            if not _wait_gone(process, timeout):
                self._kill_group(process)
        self._reap()
        self.pid_file.unlink(missing_ok=True)

    # -- process bookkeeping

    def _command(self, binary: Path) -> list[str]:
        return [
            str(binary),
            f"--smtp={LOOPBACK}:{self.smtp_port}",
            f"--listen={LOOPBACK}:{self.ui_port}",
            f"--database={self.database}",
            "--label=Retain (local)",
            # No call to GitHub for a newer release, no reverse DNS of the senders.
            "--disable-version-check",
            "--smtp-disable-rdns",
            "--smtp-auth-accept-any",
            "--smtp-auth-allow-insecure",
            *self.options,
        ]

    def _server_process(self) -> psutil.Process | None:
        """The live server named by the pid file, or None if the file is missing or stale."""
        pid = self._read_pid()
        if pid is None:
            return None
        try:
            process = psutil.Process(pid)
            alive = process.status() != psutil.STATUS_ZOMBIE
            command = process.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        # The pid may have been reused by an unrelated process since the file was written.
        ours = bool(command) and Path(command[0]).name == "mailpit"
        ours = ours and f"--database={self.database}" in command
        return process if alive and ours else None

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _check_running_here(self) -> None:
        if not _ready(self.ui_url, self.smtp_port):
            raise DevStackError(
                f"Mailpit from {self.data_dir} already runs (pid {self._read_pid()}) but does not "
                f"answer on SMTP port {self.smtp_port} and {self.ui_url}; stop it first "
                f"(`make down`)"
            )

    def _kill(self) -> None:
        process = self._server_process()
        if process is not None:
            self._kill_group(process)
        self._reap()
        self.pid_file.unlink(missing_ok=True)

    @staticmethod
    def _kill_group(process: psutil.Process) -> None:
        # The server leads its own session (start_new_session), so its group is only it.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        _wait_gone(process, 10)

    def _reap(self) -> None:
        """Collect the exit status of the server this object started, so no zombie is left."""
        if self._process is None:
            return
        if self._process.poll() is None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=10)
        self._process = None

    # -- running

    def _spawn(self, binary: Path) -> None:
        # MP_* variables configure Mailpit too; the caller's must not change this server.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MP_")}
        with self._open_log(f"starting Mailpit {MAILPIT_VERSION}") as log_file:
            # A session of its own: the server outlives this command and Ctrl-C in the
            # terminal does not reach it; `stop` ends it.
            self._process = subprocess.Popen(
                self._command(binary),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=env,
                start_new_session=True,
            )
        tmp = self.pid_file.with_suffix(".pid.tmp")
        tmp.write_text(f"{self._process.pid}\n")
        tmp.replace(self.pid_file)

    def _wait_until_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise DevStackError(
                    f"Mailpit exited during start (exit {code}); log {self.log_file}. "
                    f"{_tail(self.log_file)}"
                )
            if _ready(self.ui_url, self.smtp_port):
                return
            time.sleep(0.1)
        raise DevStackError(
            f"Mailpit did not answer on SMTP port {self.smtp_port} and {self.ui_url}/readyz "
            f"within {timeout:.0f}s; log {self.log_file}. {_tail(self.log_file)}"
        )

    def _open_log(self, what: str) -> IO[bytes]:
        log_file = self.log_file.open("ab")
        log_file.write(f"---- {_stamp()} {what} from {self.data_dir}\n".encode())
        log_file.flush()
        return log_file


def _ready(ui_url: str, smtp_port: int) -> bool:
    """The inbox answers /readyz (its database is open) and SMTP greets with 220."""
    try:
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            if client.get(f"{ui_url}/readyz").status_code != 200:
                return False
        with socket.create_connection((LOOPBACK, smtp_port), timeout=2.0) as sock:
            greeting = sock.recv(512)
            sock.sendall(b"QUIT\r\n")
    except (httpx.HTTPError, OSError):
        return False
    return greeting.startswith(b"220")


def _wait_gone(process: psutil.Process, timeout: float) -> bool:
    """Wait for the process to end; a zombie (exited, not yet reaped by its parent) counts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return "No log was written."
    lines = text.strip().splitlines()[-_LOG_TAIL_LINES:]
    return "Last log lines:\n" + "\n".join(lines)
