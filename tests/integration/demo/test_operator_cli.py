"""The operator commands against the real services and Kafka: dead letters re-driven once,
customers found, exported and erased, scores shown and refitted, topics described; and every
bad input answered with one line and a non-zero exit, never a traceback."""

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from schemas import parse_event, stamp
from schemas.topics import TOUCHPOINTS, TOUCHPOINTS_DLQ
from schemas.topics.dlq_v1 import DeadLetter
from services.devstack.ports import free_port
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import ADMIN_TOKEN, RunningService, read_messages
from tests.integration.profile.conftest import ADMIN, Storefront, customer_by_user, order, wait_for

pytestmark = pytest.mark.integration

RETAIN = str(Path(sys.executable).parent / "retain")


def retain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RETAIN, *args], capture_output=True, text=True, timeout=120, check=False)


async def run(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(retain, *args)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_dead_letters_are_redriven_once_and_a_fixed_one_is_processed_once(
    profile: RunningService, settings: ServiceSettings
) -> None:
    kafka = ["--bootstrap-servers", settings.kafka_bootstrap_servers]
    poison_key = _unique("poison").encode()
    user = _unique("fixed")
    # A touchpoint an earlier profile version could not fold (the bug is fixed since): its
    # dead letter, as that consumer wrote it.
    raw = order(user, _unique("o"), 12.5)
    touchpoint = stamp(parse_event(raw), received_at=datetime.now(UTC), source_id="src_ops")
    letter = DeadLetter.of(
        topic=TOUCHPOINTS,
        partition=0,
        offset=0,
        key=user.encode(),
        value=touchpoint.to_json(),
        error=RuntimeError("a bug, fixed since"),
        failed_at=datetime.now(UTC),
        consumer_group="retain-profile",
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        # And a real poison message, which the running profile dead-letters.
        await producer.send_and_wait(TOUCHPOINTS, key=poison_key, value=b'{"not": "a touchpoint"}')
        await producer.send_and_wait(
            TOUCHPOINTS_DLQ, key=user.encode(), value=letter.model_dump_json().encode()
        )
    finally:
        await producer.stop()
    await read_messages(settings, TOUCHPOINTS_DLQ, lambda m: m.key == poison_key, 1)

    listed = await run("dlq", "list", TOUCHPOINTS_DLQ, *kafka)
    assert listed.returncode == 0, listed.stderr
    assert "a bug, fixed since" in listed.stdout
    assert "waiting" in listed.stdout

    redrive = await run("dlq", "redrive", TOUCHPOINTS_DLQ, "--by", "ops-test", *kafka)
    assert redrive.returncode == 0, redrive.stderr
    assert "by ops-test at" in redrive.stdout

    async def folded() -> bool:
        found = await customer_by_user(profile.url, user)
        return found is not None and found["commerce"]["orders_count"] == 1

    await wait_for(folded)
    # The poison is still poison: the profile dead-letters it again, a new letter.
    await read_messages(settings, TOUCHPOINTS_DLQ, lambda m: m.key == poison_key, 2)

    again = await run("dlq", "redrive", TOUCHPOINTS_DLQ, "--by", "ops-test", *kafka)
    assert again.returncode == 0, again.stderr
    back = await read_messages(settings, TOUCHPOINTS, lambda m: m.key == user.encode(), 2, 5)
    assert len(back) == 1  # the fixed letter went back once, not at the second re-drive
    listed = await run("dlq", "list", TOUCHPOINTS_DLQ, *kafka)
    assert "last re-drive by ops-test" in listed.stdout
    assert "re-driven" in listed.stdout

    refused = await run("dlq", "purge", TOUCHPOINTS_DLQ, *kafka)
    assert refused.returncode != 0
    purged = await run("dlq", "purge", TOUCHPOINTS_DLQ, "--yes", *kafka)
    assert purged.returncode == 0, purged.stderr
    emptied = await run("dlq", "list", TOUCHPOINTS_DLQ, *kafka)
    assert f"0 dead letter(s) in {TOUCHPOINTS_DLQ}, 0 waiting" in emptied.stdout


async def test_customers_and_scores_through_the_cli(
    profile: RunningService,
    scoring: RunningService,
    storefront: Storefront,
    settings: ServiceSettings,
    tmp_path: Path,
) -> None:
    user = _unique("ops")
    await storefront.send([order(user, _unique("o"), 30.0)])
    found = await wait_for(lambda: customer_by_user(profile.url, user))
    customer_id = found["customer_id"]
    on_profile = ["--url", profile.url, "--token", ADMIN_TOKEN]
    on_scoring = ["--url", scoring.url, "--token", ADMIN_TOKEN]

    find = await run("customers", "find", "--user-id", user, *on_profile)
    assert find.returncode == 0, find.stderr
    assert customer_id in find.stdout
    assert "orders 1" in find.stdout
    exported = tmp_path / "export.json"
    export = await run("customers", "export", customer_id, "--output", str(exported), *on_profile)
    assert export.returncode == 0, export.stderr
    assert json.loads(exported.read_text())["profile"]["customer_id"] == customer_id

    everyone = tmp_path / "profiles.jsonl"
    export_all = await run("customers", "export", "--all", "--output", str(everyone), *on_profile)
    assert export_all.returncode == 0, export_all.stderr
    exported_ids = {json.loads(line)["customer_id"] for line in everyone.read_text().splitlines()}
    assert customer_id in exported_ids

    async def scored() -> bool:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.get(f"{scoring.url}/v1/scores/{customer_id}", headers=ADMIN)
        return answer.status_code == 200

    await wait_for(scored)
    shown = await run("scores", "show", customer_id, *on_scoring)
    assert json.loads(shown.stdout)["customer_id"] == customer_id
    refit = await run("scores", "refit", *on_scoring)
    assert refit.returncode == 0, refit.stderr
    assert "model version" in refit.stdout

    topics = await run(
        "topics", "describe", "--bootstrap-servers", settings.kafka_bootstrap_servers
    )
    assert topics.returncode == 0, topics.stderr
    assert any(line.split()[:2] == ["touchpoints.v1", "6"] for line in topics.stdout.splitlines())
    assert any(line.startswith("retain-profile ") for line in topics.stdout.splitlines())
    # Each member of a group is named with the partitions it holds.
    assert any(
        line.startswith("retain-profile ") and "touchpoints.v1[" in line
        for line in topics.stdout.splitlines()
    )

    refused = await run("customers", "erase", customer_id, *on_profile)
    assert refused.returncode != 0
    erase = await run("customers", "erase", customer_id, "--yes", *on_profile)
    assert erase.returncode == 0, erase.stderr
    gone = await run("customers", "find", "--customer-id", customer_id, *on_profile)
    assert gone.returncode != 0


async def test_every_bad_input_is_one_line_and_a_non_zero_exit(
    ingest: RunningService,
    profile: RunningService,
    scoring: RunningService,
    write_key: str,
    settings: ServiceSettings,
    tmp_path: Path,
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    no_kafka = ["--bootstrap-servers", f"127.0.0.1:{free_port()}"]
    bad_csv = tmp_path / "orders.csv"
    bad_csv.write_text("customer_id,order_id,date,amount\nc-1,o-1,yesterday,5\n")
    missing = str(tmp_path / "missing.csv")
    wrong = ["--token", "wrong-token"]
    # The demo also sets spend and refits through scoring: given here, so that a fresh
    # checkout (no local env file) fails for the reason each case is about.
    on_scoring = ["--url", scoring.url, "--token", ADMIN_TOKEN]
    cases = {
        "unknown topic": ["dlq", "list", "nope.v1"],
        "not a number": ["demo", "--customers", "0"],
        "not a date": ["demo", "--until", "31/01/2026"],
        "no such command": ["dlq", "drain", TOUCHPOINTS_DLQ],
        "kafka unreachable (dlq)": ["dlq", "redrive", TOUCHPOINTS_DLQ, *no_kafka],
        "kafka unreachable (topics)": ["topics", "describe", *no_kafka],
        "no dead letter there": [
            *("dlq", "show", TOUCHPOINTS_DLQ, "--offset", "999999"),
            *("--bootstrap-servers", settings.kafka_bootstrap_servers),
        ],
        "purge unconfirmed": ["dlq", "purge", TOUCHPOINTS_DLQ],
        "bad orders file": ["replay", "csv", str(bad_csv), "--ingest-url", ingest.url],
        "missing orders file": ["replay", "csv", missing, "--ingest-url", ingest.url],
        "missing cdnow file": ["replay", "cdnow", missing],
        "bad spend file": ["spend", "import", str(bad_csv), "--url", scoring.url],
        "wrong write key": [
            *("demo", "--ingest-url", ingest.url, "--write-key", "wk_wrong", *on_scoring)
        ],
        "ingest unreachable": [
            *("demo", "--ingest-url", nowhere, "--write-key", write_key, *on_scoring)
        ],
        "wrong token (profile)": [
            *("customers", "find", "--user-id", "u", "--url", profile.url, *wrong)
        ],
        "wrong token (scoring)": ["scores", "refit", "--url", scoring.url, *wrong],
        "profile unreachable": ["customers", "export", "c", "--url", nowhere, *wrong],
        "scoring unreachable": ["scores", "show", "c", "--url", nowhere, *wrong],
        "notify unreachable": ["journeys", "list", "--url", nowhere, *wrong],
        "unknown customer": [
            *("scores", "show", "cus_nobody", "--url", scoring.url, "--token", ADMIN_TOKEN)
        ],
    }
    slots = asyncio.Semaphore(4)  # a few at once: each is a process of its own

    async def attempt(args: list[str]) -> subprocess.CompletedProcess[str]:
        async with slots:
            return await run(*args)

    answers = await asyncio.gather(*(attempt(args) for args in cases.values()))
    results = dict(zip(cases, answers, strict=True))
    for name, result in results.items():
        assert result.returncode != 0, name
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (name, result.stderr)
        assert lines[0].startswith("retain"), (name, lines)
        assert "Traceback" not in result.stderr + result.stdout, name
    assert "unknown dead-letter topic 'nope.v1'" in results["unknown topic"].stderr
    assert "--customers: 0 is not 1 or more" in results["not a number"].stderr
    assert "'31/01/2026' is not a date like 2026-01-31" in results["not a date"].stderr
    assert "refused the admin token" in results["wrong token (profile)"].stderr
    assert "refused the write key" in results["wrong write key"].stderr
    assert "unreachable" in results["ingest unreachable"].stderr
    assert "line 2: date 'yesterday'" in results["bad orders file"].stderr
    assert "is unreachable" in results["notify unreachable"].stderr
