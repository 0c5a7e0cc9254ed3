"""A refit with enough data fits the model, moves customers between segments, and announces
each move once: a second refit on the same ledger announces nothing more."""

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from schemas.topics import LIFECYCLE
from services.profile.domain.identity import customer_id_for
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import RunningService, read_messages
from tests.integration.profile.conftest import ADMIN, Storefront, order, wait_for

# It starts from no fitted model: the session's first refit.
pytestmark = [pytest.mark.integration, pytest.mark.first]

CUSTOMERS = 140  # a fit needs 100 customers with orders, 20 of them repeat buyers


def _history(rng: random.Random) -> list[tuple[float, float]]:
    """One customer's orders (days ago, revenue) over the past year, drawn the way BG/NBD and
    Gamma-Gamma say customers buy, drop out and spend, so the data pin a model."""
    rate, drop_out = rng.gammavariate(0.8, 1 / 25), rng.betavariate(1.0, 3.0)
    usual_spend = rng.gammavariate(3, 20)
    day, days = rng.uniform(0, 300), []
    while True:
        days.append(day)
        day += rng.expovariate(rate)
        if len(days) == 8 or day >= 364 or rng.random() < drop_out:
            break
    return [(364 - d, round(usual_spend * rng.uniform(0.7, 1.3), 2)) for d in days]


def _standing(record: dict[str, Any]) -> dict[str, str | None]:
    return {
        "lifecycle_stage": record["lifecycle_stage"],
        "value_tier": record["value_tier"],
        "ladder_step": record["ladder_step"],
        "rfm_segment": record["rfm"]["segment"] if record["rfm"] else None,
    }


async def _all_scores(url: str, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(
            *(client.get(f"{url}/v1/scores/{c}", headers=ADMIN) for c in customer_ids)
        )
    return {c: r.json() for c, r in zip(customer_ids, responses, strict=True) if r.is_success}


async def _transitions(settings: ServiceSettings, customer_ids: list[str]) -> list[dict[str, Any]]:
    keys = {c.encode() for c in customer_ids}
    messages = await read_messages(
        settings, LIFECYCLE, lambda m: m.key in keys, count=1_000_000, wait_seconds=6
    )
    events = [orjson.loads(m.value or b"") for m in messages]
    return [e for e in events if e["type"] in ("stage_changed", "segment_changed")]


def _moves(event: dict[str, Any]) -> tuple[str, str, str | None, str | None]:
    if event["type"] == "stage_changed":
        return (event["customer_id"], "lifecycle_stage", event["from_stage"], event["to_stage"])
    dimension = event["dimension"]
    return (event["customer_id"], dimension, event["from_segment"], event["to_segment"])


async def _refit(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=120) as client:
        response = await client.post(f"{url}/v1/refit", headers=ADMIN)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_refit_moves_customers_and_announces_each_move_once(
    scoring: RunningService, storefront: Storefront, settings: ServiceSettings
) -> None:
    run, rng, now = uuid.uuid4().hex[:8], random.Random(5), datetime.now(UTC)
    orders_of: dict[str, int] = {}
    events = []
    for i in range(CUSTOMERS):
        user = f"refit-{run}-{i}"
        history = _history(rng)
        for n, (days_ago, revenue) in enumerate(history):
            at = (now - timedelta(days=days_ago)).isoformat()
            events.append(order(user, f"{user}-o{n}", revenue, timestamp=at))
        orders_of[customer_id_for(("user", user))] = len(history)
    await storefront.send(events)
    customer_ids = sorted(orders_of)

    async def ledger_complete() -> dict[str, dict[str, Any]] | None:
        # Without a fitted model every repeat buyer is a client: all orders are in the ledger.
        found = await _all_scores(scoring.url, customer_ids)
        expected = {c: "client" if n > 1 else "customer" for c, n in orders_of.items()}
        steps = {c: r["ladder_step"] for c, r in found.items()}
        return found if steps == expected else None

    before = await wait_for(ledger_complete, seconds=120)
    assert {r["model"] for r in before.values()} == {"insufficient_data"}

    model = await _refit(scoring.url)
    assert model["status"] == "fitted", model
    assert model["customers"] >= CUSTOMERS

    async def rescored(version: int) -> dict[str, dict[str, Any]] | None:
        found = await _all_scores(scoring.url, customer_ids)
        done = len(found) == CUSTOMERS and all(
            r["model_version"] >= version for r in found.values()
        )
        return found if done else None

    after = await wait_for(lambda: rescored(model["version"]), seconds=60)
    assert all(r["model"] == "fitted" and r["probability_alive"] for r in after.values())
    moved = {
        (c, dimension, was, now_in)
        for c in customer_ids
        for (dimension, was), now_in in zip(
            _standing(before[c]).items(), _standing(after[c]).values(), strict=True
        )
        if was != now_in
    }
    assert {dimension for _, dimension, _, _ in moved} >= {"value_tier", "rfm_segment"}

    announced = await _transitions(settings, customer_ids)
    assert len({e["event_id"] for e in announced}) == len(announced)  # no event twice
    moves = [_moves(e) for e in announced]
    for move in moved:
        assert moves.count(move) == 1, move

    # The same ledger fits the same model: new records (a new model version), no new moves.
    again = await _refit(scoring.url)
    assert again["version"] > model["version"]
    assert again["status"] == "fitted"
    final = await wait_for(lambda: rescored(again["version"]), seconds=60)
    assert {c: _standing(r) for c, r in final.items()} == {
        c: _standing(r) for c, r in after.items()
    }
    ids = sorted(e["event_id"] for e in await _transitions(settings, customer_ids))
    assert ids == sorted(e["event_id"] for e in announced)
