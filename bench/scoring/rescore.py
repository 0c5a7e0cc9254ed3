"""Incremental rescoring: profile changes folded into scores, in process, on a real PostgreSQL.

    .venv/bin/python -m bench.scoring.rescore [--customers 20000] [--batch-size 500]

Starts its own durable PostgreSQL on a free loopback port, migrates the scoring schema, fits a
model on synthetic customers, then runs scoring's real handler (the consumer kit's
transactional consumer: decode, the score use case, the PostgreSQL store, outbox, offsets) over
profiles.v1 records for `--customers` customers with orders, in batches, without Kafka or the
relay. Every customer is scored once first (not timed); then one change per customer is timed,
each moving the customer's scores, so every one is published. Target (issue):
20,000 profile changes/s from profiles.v1 consumed to scores.v1 committed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psutil
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.common import InProcessRecord, postgres_processes, with_durable_postgres
from schemas.topics.profiles_v1 import Commerce, ProfileSnapshot, Referrals
from services.devstack.postgres import LocalPostgres
from services.runtime.db import create_engine, run_migrations
from services.runtime.messages import OutboxMessage
from services.runtime.outbox import Outbox
from services.runtime.settings import Environment
from services.runtime.transactional import TransactionalConsumer
from services.scoring.domain.refit import refit
from services.scoring.domain.score import LedgerOrder
from services.scoring.domain.standing import StandingRules
from services.scoring.main import decode_profile
from services.scoring.score_batch import Item, ScoreBatch
from services.scoring.settings import ScoringSettings
from services.scoring.store import PostgresScoringStore

TARGET = 20_000


def profiles_handler(engine: AsyncEngine, score_batch: ScoreBatch) -> TransactionalConsumer[Item]:
    """What scoring's profiles.v1 consumer runs for a batch of records, without Kafka: decode,
    score, store, outbox and offsets in one transaction."""

    async def apply(connection: AsyncConnection, items: Sequence[Item]) -> list[OutboxMessage]:
        return await score_batch(PostgresScoringStore(connection), items)

    return TransactionalConsumer(
        engine,
        Outbox("scoring"),
        group_id="bench",
        dead_letter_topic="profiles.dlq.v1",
        decode=decode_profile,
        apply=apply,
    )


async def _run(args: argparse.Namespace, postgres: LocalPostgres) -> None:
    settings = ScoringSettings(env=Environment.LOCAL, database_url=postgres.url)
    await run_migrations(settings, "scoring")
    engine = create_engine(settings)
    now = datetime.now(UTC)
    rules = StandingRules()
    ledger = {
        f"cus_{i:07d}": [
            LedgerOrder(
                f"o{i}-{n}",
                now - timedelta(days=400 - 90 * n - i % 60),
                Decimal(20 + i % 50),
                "EUR",
            )
            for n in range(1 + i % 4)
        ]
        for i in range(args.customers)
    }
    model = refit(ledger, as_of=now.date(), version=1, rules=rules)
    async with engine.begin() as connection:
        store = PostgresScoringStore(connection)
        await store.add_orders([(c, o) for c, orders in ledger.items() for o in orders])
    handler = profiles_handler(engine, ScoreBatch(rules, model))

    def changes(revision: int, first_offset: int) -> list[InProcessRecord]:
        # From revision 2 on, a referred customer's order raises the customer's historical
        # CLV: every change moves their scores, so every one is published.
        records = []
        for n, (customer_id, orders) in enumerate(ledger.items()):
            revenue = sum((o.revenue for o in orders), Decimal(0))
            referred = Decimal(10 * (revision - 1))
            snapshot = ProfileSnapshot(
                customer_id=customer_id,
                revision=revision,
                updated_at=now,
                commerce=Commerce(currency="EUR", revenue_by_currency={"EUR": revenue}),
                referrals=Referrals(
                    referred_customers_count=1 if referred else 0,
                    referred_revenue=referred,
                    currency="EUR" if referred else None,
                    revenue_by_currency={"EUR": referred} if referred else {},
                ),
            )
            value = snapshot.model_dump_json().encode()
            records.append(
                InProcessRecord("profiles.v1", 0, first_offset + n, 0, customer_id.encode(), value)
            )
        return records

    # Everyone is scored once first (not timed): the benchmark is of changes to customers
    # scoring already knows, the steady state.
    first = changes(1, 0)
    for start in range(0, len(first), args.batch_size):
        await handler(first[start : start + args.batch_size])
    records = changes(2, len(first))
    me = psutil.Process()
    database = postgres_processes(postgres)
    ours = sum(me.cpu_times()[:2])
    theirs = sum(sum(p.cpu_times()[:2]) for p in database)
    started = time.perf_counter()
    for start in range(0, len(records), args.batch_size):
        await handler(records[start : start + args.batch_size])
    elapsed = time.perf_counter() - started
    own_cpu = sum(me.cpu_times()[:2]) - ours
    db_cpu = sum(sum(p.cpu_times()[:2]) for p in postgres_processes(postgres)) - theirs
    rate = len(records) / elapsed
    print(
        f"{len(records):,} profile changes rescored in {elapsed:.1f}s: {rate:,.0f}/s "
        f"(target {TARGET:,}/s: {'pass' if rate >= TARGET else 'MISS'}); CPU: this process "
        f"{own_cpu / len(records) * 1e6:.0f} us per change, "
        f"PostgreSQL ~{db_cpu / len(records) * 1e6:.0f} us"
    )
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    with_durable_postgres(lambda postgres: _run(args, postgres))


if __name__ == "__main__":
    main()
