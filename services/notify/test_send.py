"""Test sends: one template rendered as a journey would render it, delivered at once to an
address an operator names, to see what customers will get.

A test send is not a customer's email: the ledger does not record it, no journey counts it,
notifications.v1 does not carry it, caps, quiet hours and consent do not apply, and its links
are not tracked. The suppression list does apply (an unsubscribed address gets nothing, not
even a test). Its links name no customer: the unsubscribe link of a marketing test suppresses
the address it went to and changes no one's consent, even when the email was personalised
with a real customer's profile and scores.
"""

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.topics.notifications_v1 import EmailKind
from services.notify.domain import Recipient, Send
from services.notify.sender import Composer, Delivery
from services.notify.smtp import Delivered, HardBounce
from services.notify.store import PostgresNotifyStore

TEST_CUSTOMER = "test-send"  # what the links name: no customer id looks like this
SUBJECT_PREFIX = "[Test] "  # the composer given to TestSends puts it before every subject


class TestSendRefused(Exception):
    """Nothing was sent; `status` is the HTTP status that says why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class TestSent:
    template: str
    kind: EmailKind
    to: str
    message_id: str
    subject: str
    smtp_response: str


class TestSends:
    def __init__(
        self,
        engine: AsyncEngine,
        templates: Mapping[str, EmailKind],
        compose: Composer,
        delivery: Delivery,
        *,
        message_id_for: Callable[[str], str],
    ) -> None:
        self._engine = engine
        self._templates = templates
        self._compose = compose
        self._delivery = delivery
        self._message_id_for = message_id_for

    async def send(
        self,
        template: str,
        to: str,
        *,
        customer_id: str | None = None,
        trigger: Mapping[str, Any] | None = None,
    ) -> TestSent:
        """Render `template` (for `customer_id`'s profile and scores, with `trigger` as the
        event that started the journey) and deliver it to `to`; TestSendRefused otherwise."""
        kind = self._templates.get(template)
        if kind is None:
            known = ", ".join(sorted(self._templates))
            raise TestSendRefused(404, f"no journey sends a template {template!r}; known: {known}")
        async with self._engine.connect() as connection:
            store = PostgresNotifyStore(connection)
            suppressed = await store.suppressed([to])
            held = await store.recipients([customer_id]) if customer_id else {}
        if to.lower() in suppressed:
            raise TestSendRefused(
                409, f"{to} is on the suppression list ({suppressed[to.lower()]}): nothing is sent"
            )
        if customer_id and customer_id not in held:
            raise TestSendRefused(404, f"notify holds no profile of customer {customer_id!r}")
        stored = held.get(customer_id) if customer_id else None
        notification_id = f"test.{uuid.uuid4().hex}"
        send = Send(
            notification_id=notification_id,
            customer_id=TEST_CUSTOMER,
            journey="test",
            step=0,
            template=template,
            kind=kind,
            trigger_event_id="",
            to=to,
            tracking=False,
            context={"journey": "test", "run_key": notification_id, "trigger": trigger or {}},
        )
        recipient = Recipient.from_records(
            customer_id or TEST_CUSTOMER,
            stored.profile if stored else None,
            stored.scores if stored else None,
        )
        try:
            message = self._compose(send, recipient, tracking=False)
        except Exception as error:  # what a template error says is what the operator needs
            raise TestSendRefused(422, f"template {template!r} did not render: {error}") from None
        result = await self._delivery.deliver(message)
        if isinstance(result, HardBounce):
            raise TestSendRefused(422, f"the SMTP server refused {to}: {_answer(result)}")
        if not isinstance(result, Delivered):
            raise TestSendRefused(502, f"the SMTP server did not take it: {_answer(result)}")
        return TestSent(
            template=template,
            kind=kind,
            to=to,
            message_id=self._message_id_for(notification_id),
            subject=str(message["Subject"]),
            smtp_response=result.response,
        )


def _answer(result: Any) -> str:
    return f"{result.code} {result.text}" if result.code is not None else str(result.text)
