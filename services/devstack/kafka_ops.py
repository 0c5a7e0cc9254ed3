"""`retain dlq` and `retain topics`: dead letters and topics, without a Kafka shell.

They talk to the brokers named by `--bootstrap-servers`, else RETAIN_KAFKA_BOOTSTRAP_SERVERS,
else the local stack's; TLS and SASL come from the same RETAIN_KAFKA_* settings the services
read. The planning is in `services.devstack.redrive`.
"""

import argparse
import asyncio
import getpass
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from schemas.topics import TOPICS
from schemas.topics.dlq_v1 import DeadLetter
from services.devstack.errors import DevStackError
from services.devstack.ports import LOOPBACK
from services.devstack.progress import bar
from services.devstack.redrive import (
    REDRIVE_GROUP,
    Letter,
    RedriveRecord,
    headers,
    original_key,
    plan_redrive,
    status,
)
from services.devstack.stack import StackConfig
from services.runtime.kafka import create_producer
from services.runtime.settings import Environment, ServiceSettings

DEAD_LETTER_TOPICS = tuple(spec.name for spec in TOPICS if spec.name.endswith(".dlq.v1"))
_TIMEOUT_SECONDS = 15


def add_commands(commands: Any) -> None:
    dlq = commands.add_parser("dlq", help="dead letters: list, show, re-drive, purge")
    actions = dlq.add_subparsers(dest="action", required=True)
    helps = {
        "list": "every dead letter of TOPIC, with its error and whether it was re-driven",
        "show": "one dead letter in full (--offset)",
        "redrive": "put every waiting dead letter back on its source topic, once",
        "purge": "delete every dead letter of TOPIC (--yes)",
    }
    for name, help_text in helps.items():
        action = actions.add_parser(name, help=help_text, description=help_text)
        action.add_argument("topic", help=f"one of {', '.join(DEAD_LETTER_TOPICS)}")
        _add_kafka_arg(action)
        if name == "show":
            action.add_argument("--offset", type=int, required=True)
        if name == "redrive":
            action.add_argument("--by", help="who re-drives (default: user@host)")
        if name == "purge":
            action.add_argument("--yes", action="store_true", help="really delete them")
    topics = commands.add_parser("topics", help="topics: partitions, end offsets, consumer lag")
    topic_actions = topics.add_subparsers(dest="action", required=True)
    _add_kafka_arg(
        topic_actions.add_parser(
            "describe", help="every topic's partitions and end offsets, and each group's lag"
        )
    )


def _add_kafka_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap-servers",
        help="Kafka (default: RETAIN_KAFKA_BOOTSTRAP_SERVERS, else the local stack's)",
    )


def dlq(config: StackConfig, args: argparse.Namespace) -> None:
    if args.topic not in DEAD_LETTER_TOPICS:
        raise DevStackError(
            f"unknown dead-letter topic {args.topic!r}: one of {', '.join(DEAD_LETTER_TOPICS)}"
        )
    settings = _settings(config, args)
    action = {"list": _list, "show": _show, "redrive": _redrive, "purge": _purge}[args.action]
    _run(action(settings, args))


def topics(config: StackConfig, args: argparse.Namespace) -> None:
    _run(describe_topics(_settings(config, args)))


def _settings(config: StackConfig, args: argparse.Namespace) -> ServiceSettings:
    servers = (
        args.bootstrap_servers
        or os.environ.get("RETAIN_KAFKA_BOOTSTRAP_SERVERS")
        or f"{LOOPBACK}:{config.kafka_port}"
    )
    return ServiceSettings(env=Environment.LOCAL, kafka_bootstrap_servers=servers)


def _run(work: Any) -> None:
    # aiokafka logs every failed connection attempt; the one-line error below says it once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        asyncio.run(asyncio.wait_for(work, timeout=120))
    except (KafkaError, OSError, TimeoutError) as error:
        raise DevStackError(f"Kafka: {type(error).__name__} {error}".strip()) from None


@asynccontextmanager
async def _admin(settings: ServiceSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(
        **settings.kafka_client_options(),
        client_id="retain-cli",
        request_timeout_ms=_TIMEOUT_SECONDS * 1000,
    )
    async with _started(settings, admin.start, admin.close):
        yield admin


@asynccontextmanager
async def _consumer(settings: ServiceSettings, **options: Any) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        client_id="retain-cli",
        enable_auto_commit=False,
        **options,
    )
    async with _started(settings, consumer.start, consumer.stop):
        yield consumer


@asynccontextmanager
async def _started(
    settings: ServiceSettings,
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
) -> AsyncIterator[None]:
    """A client started, or one line saying Kafka is unreachable; stopped in every case."""
    try:
        await asyncio.wait_for(start(), _TIMEOUT_SECONDS)
    except (KafkaError, OSError, TimeoutError):
        await stop()
        raise DevStackError(f"Kafka at {settings.kafka_bootstrap_servers} is unreachable") from None
    try:
        yield
    finally:
        await stop()


async def _redriven(settings: ServiceSettings, topic: str) -> tuple[int, RedriveRecord | None]:
    """The offset below which the topic's letters were re-driven, and the last re-drive."""
    partition = TopicPartition(topic, 0)
    async with _admin(settings) as admin:
        committed = await admin.list_consumer_group_offsets(REDRIVE_GROUP, partitions=[partition])
    done = committed.get(partition)
    if done is None or done.offset < 0:
        return 0, None
    return done.offset, RedriveRecord.parse(done.metadata)


async def _letters(settings: ServiceSettings, topic: str) -> list[Letter]:
    """Every dead letter the topic holds."""
    async with _consumer(settings) as consumer:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        letters: list[Letter] = []
        while await consumer.position(partition) < end:
            batch = await consumer.getmany(partition, timeout_ms=1000)
            for record in batch.get(partition, []):
                try:
                    dead = DeadLetter.model_validate_json(record.value or b"")
                except ValidationError:
                    continue  # not a dead letter: nothing to show or re-drive
                letters.append(Letter(record.offset, dead))
        return letters


async def _list(settings: ServiceSettings, args: argparse.Namespace) -> None:
    letters = await _letters(settings, args.topic)
    redriven_below, record = await _redriven(settings, args.topic)
    print(f"{'offset':>7}  {'failed at':<20} {'group':<26} {'from':<22} {'status':<10} error")
    for letter in letters:
        dead = letter.dead
        origin = f"{dead.original_topic}/{dead.partition}@{dead.offset}"
        error = " ".join(f"{dead.error_type}: {dead.error}".split())[:70]
        print(
            f"{letter.offset:>7}  {dead.failed_at:%Y-%m-%d %H:%M:%S}  {dead.consumer_group:<26} "
            f"{origin:<22} {status(letter, redriven_below):<10} {error}"
        )
    waiting = sum(1 for letter in letters if letter.offset >= redriven_below)
    last = f"; last re-drive by {record.by} at {record.at:%Y-%m-%d %H:%M:%S %Z}" if record else ""
    print(f"{len(letters)} dead letter(s) in {args.topic}, {waiting} waiting{last}")


async def _show(settings: ServiceSettings, args: argparse.Namespace) -> None:
    letters = await _letters(settings, args.topic)
    redriven_below, _ = await _redriven(settings, args.topic)
    found = next((letter for letter in letters if letter.offset == args.offset), None)
    if found is None:
        offsets = [letter.offset for letter in letters]
        held = f"offsets {min(offsets)} to {max(offsets)}" if offsets else "none"
        raise DevStackError(f"no dead letter at offset {args.offset} of {args.topic} ({held})")
    shown = found.dead.model_dump(mode="json") | {"status": status(found, redriven_below)}
    print(json.dumps(shown, indent=2))


async def _redrive(settings: ServiceSettings, args: argparse.Namespace) -> None:
    letters = await _letters(settings, args.topic)
    redriven_below, _ = await _redriven(settings, args.topic)
    plan = plan_redrive(letters, redriven_below)
    record = RedriveRecord(
        by=args.by or f"{getpass.getuser()}@{socket.gethostname()}",
        at=datetime.now(UTC),
        sent=len(plan.send),
    )
    producer = create_producer(settings, "retain-cli")
    async with _started(settings, producer.start, producer.stop):
        with bar() as progress:
            task = progress.add_task(f"re-driving {args.topic}", total=len(plan.send), note="")
            for letter in plan.send:
                await producer.send_and_wait(
                    letter.dead.original_topic,
                    key=original_key(letter.dead),
                    value=letter.dead.original_value(),
                    headers=headers(args.topic, letter, record),
                )
                progress.advance(task)
    # Recorded once every letter is acknowledged: a crash before re-drives them again, which
    # the consumers' idempotence makes harmless; never none of them.
    if plan.commit_offset > redriven_below:
        await _commit(settings, args.topic, plan.commit_offset, record)
    for letter, why in plan.cannot:
        print(f"offset {letter.offset} left: {why}")
    print(
        f"re-drove {len(plan.send)} dead letter(s) of {args.topic} to their source topics "
        f"(by {record.by} at {record.at:%Y-%m-%d %H:%M:%S %Z})"
    )


async def _commit(
    settings: ServiceSettings, topic: str, offset: int, record: RedriveRecord
) -> None:
    async with _consumer(settings, group_id=REDRIVE_GROUP) as consumer:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.commit({partition: OffsetAndMetadata(offset, record.metadata())})


async def _purge(settings: ServiceSettings, args: argparse.Namespace) -> None:
    if not args.yes:
        raise DevStackError(f"purge deletes every dead letter of {args.topic}: add --yes")
    letters = await _letters(settings, args.topic)
    partition = TopicPartition(args.topic, 0)
    end = max((letter.offset + 1 for letter in letters), default=0)
    if end:
        async with _admin(settings) as admin:
            await admin.delete_records({partition: RecordsToDelete(before_offset=end)})
    print(f"purged {len(letters)} dead letter(s) from {args.topic}")


async def describe_topics(settings: ServiceSettings) -> None:
    """Prints every topic's partitions and end offsets, each group's lag, and its members."""
    async with _admin(settings) as admin:
        names = sorted(name for name in await admin.list_topics() if not name.startswith("__"))
        described = await admin.describe_topics(names) if names else []
        groups = sorted(group[0] for group in await admin.list_consumer_groups())
        committed = {group: await admin.list_consumer_group_offsets(group) for group in groups}
        members = await _members(admin, groups)
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    async with _consumer(settings) as consumer:
        ends = await consumer.end_offsets(partitions) if partitions else {}
    print(f"{'topic':<28} {'partitions':>10} {'end offsets':>12}")
    for name in names:
        mine = [tp for tp in partitions if tp.topic == name]
        print(f"{name:<28} {len(mine):>10} {sum(ends[tp] for tp in mine):>12,}")
    print(f"\n{'consumer group':<32} {'topic':<28} {'lag':>10}")
    for group in groups:
        lag: dict[str, int] = {}
        for tp, done in committed[group].items():
            if tp in ends and done.offset >= 0:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(ends[tp] - done.offset, 0)
        for topic, behind in sorted(lag.items()):
            print(f"{group:<32} {topic:<28} {behind:>10,}")
    # Who holds which partition, and how far behind each one is: a member that holds a
    # partition but no longer consumes it shows here as the one whose lag does not move.
    print(f"\n{'consumer group':<32} {'member':<48} {'partitions (lag)'}")
    for group, client_id, assigned in members:
        held = ", ".join(
            f"{tp.topic}[{tp.partition}] ({_lag(committed[group], ends, tp)})"
            for tp in sorted(assigned)
        )
        print(f"{group:<32} {client_id:<48} {held or '-'}")


async def _members(
    admin: AIOKafkaAdminClient, groups: list[str]
) -> list[tuple[str, str, list[TopicPartition]]]:
    """(group, member's client id, its partitions) for every member of these groups."""
    found: list[tuple[str, str, list[TopicPartition]]] = []
    for group in groups:
        # One group per request: aiokafka 0.14 fails to decode an answer describing several.
        [response] = await admin.describe_consumer_groups([group])
        [(_error, _group, _state, _type, _protocol, members)] = response.groups
        for _member, client_id, _host, _metadata, assignment in members:
            held = ConsumerProtocolMemberAssignment.decode(assignment) if assignment else None
            found.append((group, client_id, held.partitions() if held else []))
    return sorted(found, key=lambda member: (member[0], member[1]))


def _lag(
    committed: dict[TopicPartition, OffsetAndMetadata],
    ends: dict[TopicPartition, int],
    tp: TopicPartition,
) -> str:
    done = committed.get(tp)
    if done is None or done.offset < 0 or tp not in ends:
        return "none committed"
    return f"{max(ends[tp] - done.offset, 0):,}"
