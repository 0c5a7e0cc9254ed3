"""The local Kafka broker: starts, serves clients, keeps its data across restarts, stops cleanly.

These tests start their own broker (not the suite's shared one) because they restart and
stop it.
"""

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.devstack.errors import DevStackError
from services.devstack.kafka import KAFKA_VERSION, POM, LocalKafka, ensure_kafka_libs, find_java
from services.devstack.ports import LOOPBACK, free_port, is_listening

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("RETAIN_CACHE_DIR", REPO_ROOT / ".cache"))
TOPIC = "devstack.smoke.v1"
GROUP = "devstack-smoke"


def _two_ports() -> tuple[int, int]:
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    return port, controller_port


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalKafka]:
    port, controller_port = _two_ports()
    kafka = LocalKafka(tmp_path / "kafka", CACHE_DIR, port=port, controller_port=controller_port)
    try:
        yield kafka
    finally:
        kafka.stop()  # also when an assertion failed half way: no broker outlives the test


def test_pom_pins_the_same_kafka_version() -> None:
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in POM.read_text()


async def test_broker_serves_clients_and_keeps_data_across_restarts(broker: LocalKafka) -> None:
    await asyncio.to_thread(broker.start)
    assert broker.is_running()
    await _create_topic(broker.bootstrap_servers)
    await _produce(broker.bootstrap_servers, b"customer-1", b"hello")
    assert await _consume_and_commit(broker.bootstrap_servers) == (b"customer-1", b"hello")

    # `make down` stops the broker from another process, knowing only the data folder.
    _stop_from_another_process(broker)
    assert not broker.is_running()

    await asyncio.to_thread(broker.start)
    assert TOPIC in await _list_topics(broker.bootstrap_servers)
    await _produce(broker.bootstrap_servers, b"customer-2", b"again")
    # The group resumes after its committed offset: the first message is not redelivered.
    assert await _consume_and_commit(broker.bootstrap_servers) == (b"customer-2", b"again")
    assert await _read_from_start(broker.bootstrap_servers, count=2) == [
        (b"customer-1", b"hello"),
        (b"customer-2", b"again"),
    ]

    pid = int(broker.pid_file.read_text())
    await asyncio.to_thread(broker.stop)
    assert not psutil.pid_exists(pid)
    assert not broker.pid_file.exists()
    assert not is_listening(broker.port)
    assert not is_listening(broker.controller_port)
    broker.stop()  # stopping a stopped broker is a no-op


@pytest.mark.parametrize("busy", ["broker", "controller"])
def test_start_refuses_a_port_in_use(tmp_path: Path, busy: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((LOOPBACK, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        other = free_port()
        ports = (taken, other) if busy == "broker" else (other, taken)
        kafka = LocalKafka(tmp_path, CACHE_DIR, port=ports[0], controller_port=ports[1])
        with pytest.raises(DevStackError, match=f"port {taken} is in use"):
            kafka.start()
    assert not kafka.pid_file.exists()


def test_stale_pid_file_is_not_a_running_broker(tmp_path: Path) -> None:
    # The pid of a live process that is not a Kafka broker, e.g. a reused pid after a reboot.
    kafka = LocalKafka(tmp_path, CACHE_DIR, port=free_port())
    kafka.pid_file.write_text(f"{os.getpid()}\n")
    assert not kafka.is_running()
    kafka.stop()
    assert not kafka.pid_file.exists()


def test_a_broker_that_exits_during_start_is_reported_with_its_log(tmp_path: Path) -> None:
    port, controller_port = _two_ports()
    kafka = LocalKafka(tmp_path, CACHE_DIR, port=port, controller_port=controller_port)
    kafka.heap = "not-a-size"  # the JVM refuses to start
    with pytest.raises(DevStackError, match="exited during start") as failure:
        kafka.start()
    assert "Invalid initial heap size" in str(failure.value)
    assert not kafka.pid_file.exists()


def test_missing_maven_is_a_readable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to run in there
    with pytest.raises(DevStackError, match=r"Maven \(mvn\) not found"):
        ensure_kafka_libs(tmp_path / "cache")


def test_failed_fetch_shows_maven_output_and_leaves_nothing_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text("#!/bin/sh\necho '[ERROR] Could not resolve dependencies'\nexit 1\n")
    mvn.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    cache = tmp_path / "cache"
    with pytest.raises(DevStackError, match="Could not resolve dependencies"):
        ensure_kafka_libs(cache)
    assert list(cache.iterdir()) == []  # so the next start fetches again


def test_missing_java_is_a_readable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevStackError, match="Java 17\\+ not found: install a JDK"):
        find_java()


def test_old_java_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(DevStackError, match="is Java 11, too old"):
        find_java()


# ---------------------------------------------------------------- helpers


def _stop_from_another_process(broker: LocalKafka) -> None:
    code = (
        "import sys; from pathlib import Path; from services.devstack.kafka import LocalKafka; "
        "LocalKafka(Path(sys.argv[1]), Path(sys.argv[2]), port=int(sys.argv[3])).stop()"
    )
    args = [str(broker.data_dir), str(broker.cache_dir), str(broker.port)]
    subprocess.run([sys.executable, "-c", code, *args], check=True, cwd=REPO_ROOT, timeout=60)


async def _create_topic(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def _list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics: list[str] = await admin.list_topics()
        return topics
    finally:
        await admin.close()


async def _produce(bootstrap: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC, value, key=key)
    finally:
        await producer.stop()


def _consumer(bootstrap: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )


async def _consume_and_commit(bootstrap: str) -> tuple[bytes, bytes]:
    consumer = _consumer(bootstrap, GROUP)
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=30)
        await consumer.commit()
        return message.key, message.value
    finally:
        await consumer.stop()


async def _read_from_start(bootstrap: str, count: int) -> list[tuple[bytes, bytes]]:
    consumer = _consumer(bootstrap, f"{GROUP}-replay")
    await consumer.start()
    try:
        messages = [await asyncio.wait_for(consumer.getone(), timeout=30) for _ in range(count)]
        return [(message.key, message.value) for message in messages]
    finally:
        await consumer.stop()
