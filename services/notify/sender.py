"""The sender: delivers the email ledger's pending rows over SMTP, never twice.

Each email goes through three recorded states, each committed before the next step:

1. claimed: `pending` -> `sending` (attempts + 1), with FOR UPDATE SKIP LOCKED, so any number
   of notify processes share the ledger and no two hold one row; committed BEFORE the SMTP
   transaction;
2. the SMTP transaction (after a last look at the suppression list: an unsubscribe committed
   a moment ago stops it);
3. the answer recorded: `sent`, `bounced` (5xx: a hard bounce also suppresses the address),
   back to `pending` with a backoff (4xx, no connection), or `failed` after the last attempt,
   each published on notifications.v1 with the state change.

A crash between 1 and 3 leaves the row `sending`. Once its lease (RETAIN_NOTIFY_SEND_LEASE)
has passed, nobody knows whether the server took the email: it is `uncertain`. Transactional
email is then sent again with the same Message-ID (a receipt had better arrive twice than
never; receivers can tell the copies apart); marketing email is not. Both are published as
`uncertain`. Outside that window a notification id yields at most one SMTP transaction.

A live sender never holds a row past its lease: it gives up on deliveries still unfinished
after three quarters of it (a slow server: tried again later, as after a timeout) and records
the answers in the last quarter, so no other process takes an email that is being sent.

Throughput: each process runs `lanes` (2) claim-deliver-record loops side by side over one
pool of SMTP connections, so the connections keep working while a lane waits for PostgreSQL;
a lane claims small batches (`batch_size`, 32) and records a batch's answers with one
statement. What a crash can leave uncertain is what the lanes hold: at most lanes x
batch_size emails.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify.domain import Recipient, Send
from services.notify.run_journeys import notification_message
from services.notify.smtp import (
    MAX_ATTEMPTS,
    Delivered,
    DeliveryResult,
    HardBounce,
    TemporaryFailure,
    backoff,
)
from services.notify.store import (
    PostgresNotifyStore,
    SendOutcome,
    SendRetry,
    StoredRecipient,
    send_from_json,
)
from services.runtime.crash_points import crash_point
from services.runtime.failures import is_transient
from services.runtime.messages import OutboxMessage
from services.runtime.outbox import Outbox
from services.runtime.stopping import wait_or_stop

log = logging.getLogger(__name__)

DELIVERY_SHARE_OF_LEASE = 0.75  # the rest of the lease is for recording the answers


class Composer(Protocol):
    def __call__(self, send: Send, recipient: Recipient, *, tracking: bool) -> EmailMessage: ...


class Delivery(Protocol):
    async def deliver(self, message: EmailMessage) -> DeliveryResult: ...


@dataclass(frozen=True)
class SenderSettings:
    batch_size: int = 32
    lanes: int = 2
    max_attempts: int = MAX_ATTEMPTS
    lease: timedelta = timedelta(minutes=2)
    poll_seconds: float = 0.5


@dataclass(frozen=True, slots=True)
class Claimed:
    send: Send
    kind: str
    attempts: int


class Sender:
    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Outbox,
        compose: Composer,
        delivery: Delivery,
        *,
        message_id_for: Callable[[str], str],
        relay_wakeup: asyncio.Event,
        wakeup: asyncio.Event,
        settings: SenderSettings = SenderSettings(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._compose = compose
        self._delivery = delivery
        self._message_id_for = message_id_for
        self._relay_wakeup = relay_wakeup
        self._wakeup = wakeup
        self._settings = settings
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        lanes = [self._lane(stop, recovers=(n == 0)) for n in range(self._settings.lanes)]
        await asyncio.gather(*lanes)

    async def _lane(self, stop: asyncio.Event, *, recovers: bool) -> None:
        failures = 0
        while not stop.is_set():
            try:
                if recovers:
                    await self.recover_stale()
                sent = await self.run_once()
                failures = 0
            except Exception as error:
                if not is_transient(error):
                    raise
                failures += 1
                log.warning("sending failed; retrying", exc_info=True)
                await wait_or_stop(stop, min(30.0, 0.5 * 2**failures))
                continue
            if sent < self._settings.batch_size:
                self._wakeup.clear()
                waiter = asyncio.create_task(self._wakeup.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=self._settings.poll_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                stopper.cancel()

    async def run_once(self) -> int:
        """Claim a batch, deliver it, record the answers; how many were claimed."""
        claimed = await self._claim()
        if not claimed:
            return 0
        crash_point("notify.sender.claimed", (c.send.customer_id for c in claimed))
        deadline = asyncio.get_running_loop().time() + (
            self._settings.lease.total_seconds() * DELIVERY_SHARE_OF_LEASE
        )
        now = self._clock()
        async with self._engine.connect() as connection:
            store = PostgresNotifyStore(connection)
            suppressed = await store.suppressed(c.send.to for c in claimed)
            held = await store.recipients(c.send.customer_id for c in claimed)
        go = [c for c in claimed if c.send.to.lower() not in suppressed]
        results = await asyncio.gather(
            *(self._deliver(c, held.get(c.send.customer_id), deadline) for c in go)
        )
        crash_point("notify.sender.delivered", (c.send.customer_id for c in go))
        answers = {c.send.notification_id: r for c, r in zip(go, results, strict=True)}
        await self._record(claimed, suppressed, answers, now)
        return len(claimed)

    async def _claim(self) -> list[Claimed]:
        async with self._engine.begin() as connection:
            rows = await PostgresNotifyStore(connection).claim_sends(
                self._clock(), self._settings.batch_size
            )
        return [Claimed(send_from_json(row.send), row.kind, row.attempts) for row in rows]

    async def _deliver(
        self, claimed: Claimed, held: StoredRecipient | None, deadline: float
    ) -> DeliveryResult:
        send = claimed.send
        recipient = Recipient.from_records(
            send.customer_id,
            held.profile if held else None,
            held.scores if held else None,
        )
        try:
            # The customer may have switched tracking off since the email was decided.
            message = self._compose(send, recipient, tracking=held.tracking if held else True)
        except Exception as error:  # a template that cannot render is not worth retrying
            log.exception("email could not be composed", extra={"template": send.template})
            return HardBounce(None, f"not composed: {error}")
        try:
            async with asyncio.timeout_at(deadline):
                return await self._delivery.deliver(message)
        except TimeoutError:
            return TemporaryFailure(None, "not delivered within the send lease")

    async def _record(
        self,
        claimed: Sequence[Claimed],
        suppressed: dict[str, str],
        results: dict[str, DeliveryResult],  # by notification id
        now: datetime,
    ) -> None:
        outcomes: list[SendOutcome] = []
        retries: list[SendRetry] = []
        bounced: list[tuple[str, str]] = []  # address, the server's answer
        messages: list[OutboxMessage] = []
        for item in claimed:
            send = item.send
            reason = suppressed.get(send.to.lower())
            if reason is not None:
                outcomes.append(SendOutcome(send.notification_id, "suppressed", reason=reason))
                messages.append(notification_message(send.held_back(reason, now)))
                continue
            result = results[send.notification_id]
            if isinstance(result, Delivered):
                message_id = self._message_id_for(send.notification_id)
                outcomes.append(SendOutcome(send.notification_id, "sent", message_id=message_id))
                messages.append(notification_message(send.sent(now, message_id)))
            elif isinstance(result, HardBounce):
                outcomes.append(SendOutcome(send.notification_id, "bounced", detail=result.text))
                bounced.append((send.to, result.text))
                messages.append(
                    notification_message(
                        send.bounced(hard=True, code=result.code, text=result.text, at=now)
                    )
                )
            elif item.attempts >= self._settings.max_attempts:
                outcomes.append(SendOutcome(send.notification_id, "failed", detail=result.text))
                messages.append(
                    notification_message(
                        send.bounced(hard=False, code=result.code, text=result.text, at=now)
                    )
                )
            else:
                due = now + backoff(item.attempts)
                retries.append(SendRetry(send.notification_id, due, result.text))
        async with self._engine.begin() as connection:
            store = PostgresNotifyStore(connection)
            await store.finish_sends(outcomes, now)
            await store.retry_sends(retries, now)
            for address, answer in bounced:
                await store.suppress(address, "hard_bounce", answer, now)
            await self._outbox.enqueue(connection, messages)
        if messages:
            self._relay_wakeup.set()

    async def recover_stale(self) -> None:
        """Rows left `sending` past their lease: a sender stopped mid-transaction."""
        now = self._clock()
        async with self._engine.begin() as connection:
            store = PostgresNotifyStore(connection)
            rows = await store.stale_sends(now - self._settings.lease)
            stale = [send_from_json(row.send) for row in rows]
            await store.retry_sends(
                [
                    SendRetry(s.notification_id, now, "uncertain: sent again")
                    for s in stale
                    if s.retried_when_uncertain
                ],
                now,
            )
            await store.finish_sends(
                [
                    SendOutcome(s.notification_id, "uncertain")
                    for s in stale
                    if not s.retried_when_uncertain
                ],
                now,
            )
            messages = [
                notification_message(s.uncertain(self._message_id_for(s.notification_id), now))
                for s in stale
            ]
            await self._outbox.enqueue(connection, messages)
        if messages:
            log.warning("sends left uncertain by a stopped sender", extra={"count": len(stale)})
            self._relay_wakeup.set()
