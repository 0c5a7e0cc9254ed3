"""scoring.transitions in PostgreSQL, through the use case: each announced change kept once
(a redelivered batch adds nothing), moved to the survivor of a merge, deleted by erasure."""

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.topics import LIFECYCLE
from services.runtime.db import create_engine
from services.runtime.settings import ServiceSettings
from services.scoring.domain.score import unfitted_model
from services.scoring.domain.standing import StandingRules
from services.scoring.score_batch import Item, ProfileUpdate, ScoreBatch
from services.scoring.store import PostgresScoringStore
from tests.integration.helpers import RunningService
from tests.unit.scoring.test_score_batch import completed, erased, merge, snapshot

pytestmark = pytest.mark.integration


async def test_transitions_are_kept_once_moved_by_a_merge_and_erased(
    scoring: RunningService,  # migrated the scoring schema
    settings: ServiceSettings,
) -> None:
    run = uuid.uuid4().hex[:8]
    guest, user = f"cus_tr_{run}_guest", f"cus_tr_{run}_user"
    now = datetime.now(UTC)
    score = ScoreBatch(StandingRules(), unfitted_model())
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            store = PostgresScoringStore(connection)
            batch: list[Item] = [
                snapshot(guest, 1, "30", at=now),
                completed(guest, f"{run}-o1", "30"),
            ]
            first = await score(store, batch, now)
            ids = {orjson.loads(m.value or b"")["event_id"] for m in first if m.topic == LIFECYCLE}
            kept = await store.transitions_of(guest)
            assert {t.event_id for t in kept} == ids != set()
            assert {(t.dimension, t.day) for t in kept} >= {("lifecycle_stage", now.date())}
            # Redelivered: the record is unchanged, so nothing is announced or kept again; the
            # same changes recorded again stay one row each.
            assert await score(store, batch, now) == []
            await store.record_transitions(kept)
            assert await store.transitions_of(guest) == kept

            merged = merge(guest, into=user)
            await score(store, [snapshot(user, 1, "30", at=now), merged], now)
            assert await store.transitions_of(guest) == []
            assert ids <= {t.event_id for t in await store.transitions_of(user)}

            later = now + timedelta(seconds=1)
            await score(store, [ProfileUpdate(user, None), erased(user, later)], later)
            assert await store.transitions_of(user) == []
            await connection.rollback()  # leave the shared tables as they were
    finally:
        await engine.dispose()
