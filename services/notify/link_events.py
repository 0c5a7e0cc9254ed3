"""What notify does when a recipient follows one of its links (the routes: tracking.py).

- an open or a click becomes a touchpoint on touchpoints.v1 (Email Opened, Email Link Clicked)
  that the profile service folds like any other event, and a record on notifications.v1
  (opened, clicked), in the same transaction, so that topic tells everything that happened to
  each email, by customer id, journey and template;
- an unsubscribe puts the address on the suppression list at once, committed before the page
  answers, so the sender (which looks at the list just before every SMTP transaction) sends it
  nothing more; the Unsubscribed touchpoint then sets the profile's consent to opted out, and
  notifications.v1 says `unsubscribed`.

A customer notify no longer holds (erased) gets no touchpoint: there is no one to name.
"""

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.topics import TOUCHPOINTS
from services.notify.domain.links import ClickLink, OpenLink, UnsubscribeLink
from services.notify.run_journeys import notification_message
from services.notify.store import PostgresNotifyStore
from services.notify.tracking import (
    RequestFacts,
    TrackedEmail,
    tracking_notification,
    tracking_touchpoint,
)
from services.runtime.messages import OutboxMessage
from services.runtime.outbox import Outbox


class LinkEvents:
    def __init__(self, engine: AsyncEngine, outbox: Outbox, relay_wakeup: asyncio.Event) -> None:
        self._engine = engine
        self._outbox = outbox
        self._relay_wakeup = relay_wakeup

    async def on_open(self, link: OpenLink, facts: RequestFacts) -> None:
        async with self._engine.begin() as connection:
            await self._touchpoint(connection, link, facts)

    async def on_click(self, link: ClickLink, facts: RequestFacts) -> None:
        async with self._engine.begin() as connection:
            await self._touchpoint(connection, link, facts)

    async def on_unsubscribe(self, link: UnsubscribeLink, facts: RequestFacts) -> None:
        async with self._engine.begin() as connection:
            await PostgresNotifyStore(connection).suppress(
                link.email, "unsubscribed", f"link in {link.notification_id}", facts.at
            )
            await self._touchpoint(connection, link, facts)

    async def _touchpoint(
        self,
        connection: AsyncConnection,
        link: OpenLink | ClickLink | UnsubscribeLink,
        facts: RequestFacts,
    ) -> None:
        store = PostgresNotifyStore(connection)
        held = await store.recipients([link.customer_id])
        profile: dict[str, Any] = (held[link.customer_id].profile or {}) if held else {}
        user_id = profile.get("user_id")
        anonymous = (profile.get("anonymous_ids") or [None])[0]
        if not user_id and not anonymous:
            return
        touchpoint = tracking_touchpoint(link, facts, user_id=user_id, anonymous_id=anonymous)
        messages = [
            OutboxMessage(TOUCHPOINTS, touchpoint.customer_key.encode(), touchpoint.to_json())
        ]
        email = await store.email_of_link(link.notification_id, link.customer_id)
        if email is not None:  # not a test send (those are not in the ledger)
            notification = tracking_notification(link, facts, TrackedEmail(**email))
            messages.append(notification_message(notification))
        await self._outbox.enqueue(connection, messages)
        self._relay_wakeup.set()
