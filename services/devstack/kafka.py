"""A local single-node Apache Kafka broker (KRaft, combined broker and controller).

The broker runs from the Kafka jars on Maven Central, so the local stack needs
Java 17+ and Maven but no Docker. The broker is a detached process recorded in
<data_dir>/kafka.pid, so a later command (`make down`) can stop it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import uuid
from contextlib import suppress
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import IO

import psutil

from services.devstack.errors import DevStackError
from services.devstack.ports import LOOPBACK, ensure_port_free

KAFKA_VERSION = "4.4.0"  # keep equal to kafka.version in deploy/kafka/pom.xml
MIN_JAVA = 17
NODE_ID = 1

_REPO = Path(__file__).resolve().parents[2]
POM = _REPO / "deploy" / "kafka" / "pom.xml"
LOG4J_CONFIG = _REPO / "deploy" / "kafka" / "log4j2.xml"

_JAVA_HINT = (
    "install a JDK 17 or newer (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
)
_MAVEN_HINT = "install Maven (e.g. apt-get install maven); it fetches the Kafka jars once"
_COMPLETE_MARKER = ".complete"
_LOG_TAIL_LINES = 20

# The defaults of Kafka's own start script, minus the 1 GB heap: G1 keeps pauses
# short under a steady produce load, and a fixed heap avoids resizing pauses.
_JVM_FLAGS = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-Xshare:auto",
    "-Djava.awt.headless=true",
)
# Class-data sharing warnings (a stale archive, classes it skips) are not the reader's concern.
_CDS_QUIET = ("-Xlog:cds=off", "-Xlog:cds+dynamic=off")


# ---------------------------------------------------------------- Java and jars


def find_java() -> str:
    """The java executable to use: JAVA_HOME's if set, else the one on PATH; must be 17+."""
    java = _java_candidate()
    if java is None:
        raise DevStackError(f"Java {MIN_JAVA}+ not found: {_JAVA_HINT}")
    major = _java_major_version(java)
    if major is None:
        raise DevStackError(f"Java {MIN_JAVA}+ not found: {java} does not run; {_JAVA_HINT}")
    if major < MIN_JAVA:
        raise DevStackError(
            f"Java {MIN_JAVA}+ not found: {java} is Java {major}, too old for Kafka "
            f"{KAFKA_VERSION}; {_JAVA_HINT}"
        )
    return java


def _java_candidate() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        java = Path(java_home) / "bin" / "java"
        if java.is_file() and os.access(java, os.X_OK):
            return str(java)
    return shutil.which("java")


def _java_major_version(java: str) -> int | None:
    # `openjdk version "17.0.15" 2025-04-15`, or `"1.8.0_392"` for Java 8 and older.
    match = re.search(r'version "(\d+)(?:\.(\d+))?', _java_version_text(java) or "")
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        major = int(match.group(2))
    return major


@cache
def _java_version_text(java: str) -> str | None:
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stderr + result.stdout if result.returncode == 0 else None


def ensure_kafka_libs(cache_dir: Path) -> Path:
    """The folder holding the broker's jars, fetched with Maven into cache_dir on first use.

    The copy goes to a scratch folder that is renamed into place only once complete, so an
    interrupted fetch leaves nothing that looks usable and is simply retried.
    """
    libs = _libs_dir(cache_dir)
    pom_digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    if _libs_complete(libs, pom_digest):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DevStackError(f"Maven (mvn) not found: {_MAVEN_HINT}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_scratch(cache_dir, libs.name)
    scratch = cache_dir / f".{libs.name}.partial-{os.getpid()}"
    try:
        _copy_dependencies(mvn, scratch)
        (scratch / _COMPLETE_MARKER).write_text(pom_digest)
        shutil.rmtree(libs, ignore_errors=True)  # an older copy made from another pom
        with suppress(OSError):  # another process may have won the race: its copy is fine
            scratch.rename(libs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not _libs_complete(libs, pom_digest):
        raise DevStackError(f"the Kafka jars could not be placed in {libs}; remove it and retry")
    return libs


def _remove_abandoned_scratch(cache_dir: Path, name: str) -> None:
    """Drop scratch folders of fetches whose process was killed; leave running ones alone."""
    for scratch in cache_dir.glob(f".{name}.partial-*"):
        owner = scratch.name.rpartition("-")[2]
        fetching = owner.isdigit() and int(owner) != os.getpid() and psutil.pid_exists(int(owner))
        if not fetching:
            shutil.rmtree(scratch, ignore_errors=True)


def _libs_dir(cache_dir: Path) -> Path:
    return cache_dir / f"kafka-{KAFKA_VERSION}"


def _libs_complete(libs: Path, pom_digest: str) -> bool:
    marker = libs / _COMPLETE_MARKER
    return marker.is_file() and marker.read_text().strip() == pom_digest


def _copy_dependencies(mvn: str, output_dir: Path) -> None:
    command = [
        mvn, "-q", "-B", "dependency:copy-dependencies",
        "-f", str(POM), f"-DoutputDirectory={output_dir}",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=900, check=False, cwd=POM.parent
        )
    except subprocess.TimeoutExpired:
        raise DevStackError(
            "Maven took more than 15 minutes to fetch the Kafka jars; check the network"
        ) from None
    if result.returncode != 0 or not (output_dir / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
        output = _strip_ansi(result.stdout + result.stderr)
        tail = "\n".join(output.strip().splitlines()[-_LOG_TAIL_LINES:])
        raise DevStackError(
            f"Maven could not fetch the Kafka {KAFKA_VERSION} jars (exit {result.returncode}); "
            f"check the network or the Maven settings. Last output:\n{tail}"
        )


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


# ---------------------------------------------------------------- the broker


class LocalKafka:
    """One broker process for one data_dir; the pid file makes it stoppable from anywhere."""

    def __init__(
        self,
        data_dir: Path,
        cache_dir: Path,
        port: int = 9092,
        controller_port: int | None = None,
        log_file: Path | None = None,
        heap: str = "512m",
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.cache_dir = cache_dir
        self.port = port
        self.controller_port = port + 1 if controller_port is None else controller_port
        self.log_file = (log_file or self.data_dir / "kafka.log").resolve()
        self.heap = heap
        self.config_file = self.data_dir / "server.properties"
        self.pid_file = self.data_dir / "kafka.pid"
        self.log_dir = self.data_dir / "logs"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def is_running(self) -> bool:
        return self._broker_process() is not None

    def start(self, timeout: float = 90.0) -> None:
        """Start the broker and return once it answers requests; keeps data across restarts."""
        if self.is_running():
            self._check_running_here()
            return
        java = find_java()
        if self.port == self.controller_port:
            raise DevStackError(f"Kafka needs two ports, but both are {self.port}")
        ensure_port_free(self.port, "Kafka")
        ensure_port_free(self.controller_port, "the Kafka controller")
        libs = ensure_kafka_libs(self.cache_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._reap()  # a broker this object started before, which has exited since
        self.pid_file.unlink(missing_ok=True)  # stale: is_running() said nothing runs
        self._write_config()
        if not self._is_formatted():
            self._format_storage(java, libs)
        self._spawn(java, libs)
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            # Also on Ctrl-C: a half-started broker must not outlive the command.
            self._kill()
            raise

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker cleanly (SIGTERM), or kill it after timeout; no-op if not running."""
        process = self._broker_process()
        clean = True
        if process is not None:
            process.terminate()
            clean = _wait_gone(process, timeout)
            if not clean:
                self._kill_group(process)
        self._reap()
        self._file_cds_dumps(keep=clean)
        self.pid_file.unlink(missing_ok=True)

    # -- process bookkeeping

    def _broker_process(self) -> psutil.Process | None:
        """The live broker named by the pid file, or None if the file is missing or stale."""
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
        ours = "kafka.Kafka" in command and str(self.config_file) in command
        return process if alive and ours else None

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _check_running_here(self) -> None:
        pid = self._read_pid()
        if not _answers_metadata(self.port, timeout=5.0):
            raise DevStackError(
                f"Kafka from {self.data_dir} already runs (pid {pid}) but does not answer on "
                f"{self.bootstrap_servers}; stop it first"
            )

    def _kill(self) -> None:
        process = self._broker_process()
        if process is not None:
            self._kill_group(process)
        self._reap()
        self._file_cds_dumps(keep=False)
        self.pid_file.unlink(missing_ok=True)

    @staticmethod
    def _kill_group(process: psutil.Process) -> None:
        # The broker leads its own session (start_new_session), so its group is only it
        # and anything it spawned.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        _wait_gone(process, 10)

    def _reap(self) -> None:
        """Collect the exit status of the broker this object started, so no zombie is left.

        Callers have already stopped it; one still alive here lost its pid file and would
        otherwise become an orphan holding the ports.
        """
        if self._process is None:
            return
        if self._process.poll() is None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=10)
        self._process = None

    # -- class-data sharing: the JVM maps the classes an earlier run loaded instead of
    # loading them again, which takes about a second off every start.

    def _cds_flags(self, java: str, libs: Path) -> list[str]:
        archive = _cds_archive(java, libs)
        for leftover in self.data_dir.glob("cds-*.jsa"):
            leftover.unlink()  # written by a run that was not stopped through stop()
        if archive.is_file():
            return [f"-XX:SharedArchiveFile={archive}", *_CDS_QUIET]
        # The JVM writes the archive when it exits; stop() moves it next to the jars.
        return [f"-XX:ArchiveClassesAtExit={self.data_dir / archive.name}", *_CDS_QUIET]

    def _file_cds_dumps(self, keep: bool) -> None:
        """Move an archive written at a clean exit into the cache; drop one from a killed run."""
        libs = _libs_dir(self.cache_dir)
        for dump in self.data_dir.glob("cds-*.jsa"):
            target = libs / dump.name
            if keep and libs.is_dir() and not target.exists():
                partial = libs / f".{dump.name}.{os.getpid()}"
                with suppress(OSError):  # only a start-up speed-up: never fail a stop for it
                    shutil.move(dump, partial)
                    partial.replace(target)
                    for older in libs.glob("cds-*.jsa"):  # from a JVM build since replaced
                        if older != target:
                            older.unlink()
                partial.unlink(missing_ok=True)
            dump.unlink(missing_ok=True)

    # -- configuration and storage

    def _write_config(self) -> None:
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.voters": f"{NODE_ID}@{LOOPBACK}:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://{LOOPBACK}:{self.port},CONTROLLER://{LOOPBACK}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            # One broker: internal topics cannot have more than one replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Nobody else joins late: do not hold the first rebalance back.
            "group.initial.rebalance.delay.ms": "0",
            # Topics are declared in code with their partitions and retention; a typo in a
            # topic name must fail rather than create a stray topic.
            "auto.create.topics.enable": "false",
        }
        lines = [f"{key}={value}" for key, value in settings.items()]
        header = "# Written by services/devstack/kafka.py on every start; edits are overwritten.\n"
        self.config_file.write_text(header + "\n".join(lines) + "\n")

    def _is_formatted(self) -> bool:
        return (self.log_dir / "meta.properties").is_file()

    def _format_storage(self, java: str, libs: Path) -> None:
        command = [
            java, *_log4j_flags(), "-cp", f"{libs}/*", "kafka.tools.StorageTool",
            "format", "--cluster-id", _new_cluster_id(), "--config", str(self.config_file),
            "--ignore-formatted",
        ]  # fmt: skip
        with self._open_log("formatting the storage") as log:
            try:
                result = subprocess.run(
                    command, stdout=log, stderr=subprocess.STDOUT, timeout=120, check=False
                )
            except subprocess.TimeoutExpired:
                raise DevStackError(
                    f"Kafka took over 2 minutes to format {self.log_dir}. {self._log_tail()}"
                ) from None
        if result.returncode != 0:
            raise DevStackError(
                f"Kafka could not format its storage in {self.log_dir} "
                f"(exit {result.returncode}). {self._log_tail()}"
            )

    # -- running

    def _spawn(self, java: str, libs: Path) -> None:
        command = [
            java, f"-Xms{self.heap}", f"-Xmx{self.heap}", *_JVM_FLAGS,
            *self._cds_flags(java, libs), *_log4j_flags(),
            "-cp", f"{libs}/*", "kafka.Kafka", str(self.config_file),
        ]  # fmt: skip
        with self._open_log(f"starting Kafka {KAFKA_VERSION}") as log:
            # A session of its own: the broker outlives this command and Ctrl-C in the
            # terminal does not reach it; `stop` ends it.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
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
                    f"Kafka exited during start (exit {code}); log {self.log_file}. "
                    f"{self._log_tail()}"
                )
            if _answers_metadata(self.port, timeout=2.0):
                return
            time.sleep(0.2)
        raise DevStackError(
            f"Kafka did not answer on {self.bootstrap_servers} within {timeout:.0f}s; "
            f"log {self.log_file}. {self._log_tail()}"
        )

    def _open_log(self, what: str) -> IO[bytes]:
        log = self.log_file.open("ab")
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"---- {stamp} {what} from {self.data_dir}\n".encode())
        log.flush()
        return log

    def _log_tail(self) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 64 * 1024))
                text = log.read().decode(errors="replace")
        except OSError:
            return "No log was written."
        lines = text.strip().splitlines()[-_LOG_TAIL_LINES:]
        return "Last log lines:\n" + "\n".join(lines)


def _wait_gone(process: psutil.Process, timeout: float) -> bool:
    """Wait for the process to end; a zombie counts as ended.

    Only the parent can reap the broker, and when stop() runs elsewhere while the starting
    process lives on (a test session, `make run`), the exited broker stays a zombie until
    that parent collects it.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def _log4j_flags() -> list[str]:
    return [f"-Dlog4j2.configurationFile={LOG4J_CONFIG}"]


def _cds_archive(java: str, libs: Path) -> Path:
    """An archive only fits the exact JVM build and class path it was written with."""
    identity = f"{os.path.realpath(java)}\n{_java_version_text(java)}\n{libs}"
    return libs / f"cds-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.jsa"


def _new_cluster_id() -> str:
    """A cluster id as Kafka writes them: 16 random bytes, URL-safe base64, no padding."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids these: they read as command-line flags
            return text


# ---------------------------------------------------------------- readiness probe
#
# The broker accepts TCP connections before it serves requests, so readiness is an
# answered Metadata request that lists this broker. Two small requests in the Kafka
# wire format keep this synchronous and free of a client library.

_API_METADATA = 3
_API_VERSIONS = 18
_CLIENT_ID = b"retain-devstack"


def _answers_metadata(port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            versions = _api_versions(sock)
            low, high = versions.get(_API_METADATA, (0, -1))
            # Versions 4..8 share one non-flexible layout; newer brokers still serve them.
            version = min(high, 8)
            if version < max(low, 4):
                return True  # a broker that serves ApiVersions is serving requests
            return _lists_node(_metadata(sock, version), port)
    except (OSError, struct.error, ValueError):
        return False


def _api_versions(sock: socket.socket) -> dict[int, tuple[int, int]]:
    body = _call(sock, _API_VERSIONS, 0, 1, b"")
    error, count = struct.unpack_from(">hi", body)
    if error != 0:
        raise ValueError(f"ApiVersions error {error}")
    entries = struct.iter_unpack(">hhh", body[6 : 6 + 6 * count])
    return {key: (low, high) for key, low, high in entries}


def _metadata(sock: socket.socket, version: int) -> list[tuple[int, str, int]]:
    # No topics, no auto-creation (and, from v8, no authorized-operations lists).
    request = struct.pack(">ib", 0, 0) + (b"\x00\x00" if version >= 8 else b"")
    body = _call(sock, _API_METADATA, version, 2, request)
    offset = 4  # throttle_time_ms
    (count,) = struct.unpack_from(">i", body, offset)
    offset += 4
    brokers = []
    for _ in range(count):
        (node_id,) = struct.unpack_from(">i", body, offset)
        host, offset = _read_string(body, offset + 4)
        (broker_port,) = struct.unpack_from(">i", body, offset)
        _rack, offset = _read_string(body, offset + 4)
        brokers.append((node_id, host, broker_port))
    return brokers


def _lists_node(brokers: list[tuple[int, str, int]], port: int) -> bool:
    return (NODE_ID, LOOPBACK, port) in brokers


def _call(sock: socket.socket, api_key: int, version: int, correlation: int, body: bytes) -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation, len(_CLIENT_ID)) + _CLIENT_ID
    sock.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    response = _recv_exact(sock, size)
    (answered,) = struct.unpack_from(">i", response)
    if answered != correlation:
        raise ValueError("response to another request")
    return response[4:]


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ValueError("connection closed")
        chunks += chunk
    return bytes(chunks)


def _read_string(data: bytes, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack_from(">h", data, offset)
    offset += 2
    if length < 0:
        return "", offset
    return data[offset : offset + length].decode(), offset + length
