"""A refit past its sample size reads a uniform, stable sample of the ledger, chosen by the
database."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.runtime.db import create_engine
from services.runtime.settings import ServiceSettings
from services.scoring.domain.ledger import LedgerOrder
from services.scoring.domain.refit import SAMPLE_BUCKETS
from services.scoring.store import PostgresScoringStore
from tests.integration.helpers import RunningService

pytestmark = pytest.mark.integration


async def test_the_ledger_sample_is_about_its_share_and_the_same_each_time(
    scoring: RunningService,  # migrated the scoring schema
    settings: ServiceSettings,
) -> None:
    run = uuid.uuid4().hex[:8]
    customers = [f"cus_sample_{run}_{i}" for i in range(800)]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            store = PostgresScoringStore(connection)
            await store.add_orders(
                [(c, LedgerOrder(f"{c}-o", at, Decimal(10), "EUR")) for c in customers]
            )
            everyone = set(await store.ledger()) & set(customers)
            half = set(await store.ledger(SAMPLE_BUCKETS // 2)) & set(customers)
            again = set(await store.ledger(SAMPLE_BUCKETS // 2)) & set(customers)
            quarter = set(await store.ledger(SAMPLE_BUCKETS // 4)) & set(customers)
            assert await store.customers_with_orders() >= len(customers)
            await connection.rollback()  # leave the shared ledger as it was
    finally:
        await engine.dispose()
    assert everyone == set(customers)
    assert half == again  # stable: the same customers from one refit to the next
    assert quarter <= half  # nested: a smaller sample keeps to the larger one's customers
    assert 0.4 < len(half) / len(customers) < 0.6
    assert 0.15 < len(quarter) / len(customers) < 0.35
