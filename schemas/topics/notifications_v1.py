"""notifications.v1 (keyed by customer id): what happened to each email, by `type`: sent,
suppressed (with the reason), bounced, uncertain; and what its reader did with it: opened,
clicked (with the URL), unsubscribed."""

from typing import Annotated, Literal

from pydantic import Field

from schemas._types import Id, OptionalId, Text, Url, UtcDatetime
from schemas.topics._common import TopicModel

EmailKind = Literal["marketing", "transactional"]
SuppressionReason = Literal[
    "no_consent",
    "unsubscribed",
    "frequency_cap",
    "quiet_hours",
    "suppressed_address",
    "no_email_address",
    "customer_erased",
    "duplicate",
]


class _Notification(TopicModel):
    notification_id: Id = Field(description="One per intended email; stable across retries.")
    customer_id: Id
    occurred_at: UtcDatetime
    channel: Literal["email"] = "email"
    kind: EmailKind
    template: Id
    journey: OptionalId = None
    trigger_event_id: OptionalId = Field(
        default=None, description="The lifecycle.v1 event_id that caused this email, if any."
    )


class NotificationSent(_Notification):
    type: Literal["sent"]
    smtp_message_id: Text | None = None


class NotificationSuppressed(_Notification):
    type: Literal["suppressed"]
    reason: SuppressionReason
    detail: Text | None = None


class NotificationBounced(_Notification):
    type: Literal["bounced"]
    bounce_type: Literal["hard", "soft"]
    smtp_status: int | None = Field(default=None, ge=200, le=599)
    diagnostic: Text | None = None


class NotificationUncertain(_Notification):
    """The sender stopped (a crash, a lost connection) between handing the email to SMTP and
    recording the answer: it may or may not have been delivered. Transactional email is sent
    again with the same Message-ID (`retried`); marketing email is not, rather than risk it
    twice."""

    type: Literal["uncertain"]
    retried: bool
    smtp_message_id: Text | None = None


class _Reaction(_Notification):
    """What the reader did with an email, recorded by notify's signed links (the same moment
    as the touchpoint notify publishes for it: Email Opened, Email Link Clicked, Unsubscribed)."""

    event_id: Id = Field(
        description="One per occurrence, the messageId of its touchpoint: publishing it twice "
        "is harmless."
    )


class NotificationOpened(_Reaction):
    """The open pixel was loaded (by the reader, or by a mail client or proxy fetching images)."""

    type: Literal["opened"]


class NotificationClicked(_Reaction):
    type: Literal["clicked"]
    url: Url


class NotificationUnsubscribed(_Reaction):
    """The reader unsubscribed with the email's link (the address is suppressed from then on)."""

    type: Literal["unsubscribed"]


NotificationEvent = Annotated[
    NotificationSent
    | NotificationSuppressed
    | NotificationBounced
    | NotificationUncertain
    | NotificationOpened
    | NotificationClicked
    | NotificationUnsubscribed,
    Field(discriminator="type"),
]
