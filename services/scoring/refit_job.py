"""Refits, on demand and on a schedule: one at a time across replicas, then every customer
rescored with the new model (published through the outbox only where scores changed).

The fit runs in a worker thread, so consumers and the API keep running meanwhile. Other
replicas pick the new model up at their next batch (the score use case checks the version).
"""

import asyncio
import logging
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from services.runtime.outbox import Outbox
from services.runtime.stopping import wait_or_stop
from services.scoring.domain.refit import RefitSettings, refit, sample_buckets
from services.scoring.domain.schedule import RefitSchedule
from services.scoring.domain.score import ScoringModel
from services.scoring.domain.standing import StandingRules
from services.scoring.score_batch import ScoreBatch
from services.scoring.store import PostgresScoringStore, StoredModel

log = logging.getLogger(__name__)

RESCORE_PAGE = 500


class RefitBusyError(RuntimeError):
    """Another replica is refitting right now."""


class RefitJob:
    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Outbox,
        score_batch: ScoreBatch,
        rules: StandingRules,
        settings: RefitSettings,
        relay_wakeup: asyncio.Event,
        schedule: RefitSchedule,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._score_batch = score_batch
        self._rules = rules
        self._settings = settings
        self._relay_wakeup = relay_wakeup
        self._schedule = schedule

    @property
    def current_model(self) -> ScoringModel:
        return self._score_batch.model

    async def run_once(self, as_of: date | None = None) -> StoredModel:
        """Fit a new model version and rescore everyone; RefitBusyError if another is running."""
        now = datetime.now(UTC)
        observation_end = as_of or now.date()
        async with self._engine.begin() as connection:
            store = PostgresScoringStore(connection)
            if not await store.try_refit_lock():
                raise RefitBusyError("another refit is running")
            customers = await store.customers_with_orders()
            ledger = await store.ledger(sample_buckets(customers, self._settings.sample_customers))
            version = await store.latest_model_version() + 1
            model = await asyncio.to_thread(
                refit,
                ledger,
                as_of=observation_end,
                version=version,
                rules=self._rules,
                settings=self._settings,
            )
            await store.save_model(model, now, observation_end)
        log.info(
            "refit done",
            extra={
                "version": version,
                "status": model.fit.status.value,
                "reason": model.fit.reason,
            },
        )
        self._score_batch.model = model
        await self._rescore_everyone(now)
        return StoredModel(now, observation_end, model)

    async def _rescore_everyone(self, now: datetime) -> None:
        after = ""
        while True:
            async with self._engine.begin() as connection:
                store = PostgresScoringStore(connection)
                page = await store.customer_page(after, RESCORE_PAGE)
                if not page:
                    return
                await store.lock_customers(page)
                messages = await self._score_batch.rescore(store, page, now)
                await self._outbox.enqueue(connection, messages)
            if messages:
                self._relay_wakeup.set()
            after = page[-1]

    async def run(self, stop: asyncio.Event) -> None:
        """The schedule: the first refit after the first wait, never at start-up."""
        while True:
            now = datetime.now(UTC)
            wait = (self._schedule.next_after(now) - now).total_seconds()
            if await wait_or_stop(stop, wait):
                return
            try:
                await self.run_once()
            except RefitBusyError:
                log.info("scheduled refit skipped: another replica is refitting")
            except Exception:  # the next scheduled refit tries again; the old model stays
                log.exception("scheduled refit failed")
