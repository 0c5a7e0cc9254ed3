"""The customer as the engine sees them at a call: contact, consent, zone, profile and scores.

The shell builds it from what notify holds (its copies of profiles.v1 and scores.v1, its
suppression list, its erasure tombstones) with `Recipient.from_records`.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from schemas.topics.profiles_v1 import ConsentStatus


@dataclass(frozen=True, slots=True)
class Recipient:
    customer_id: str
    email: str | None = None
    consent: ConsentStatus = "unknown"
    """Email-marketing consent in the profile copy."""
    consent_at: datetime | None = None
    """Event time of that consent; a newer consent_changed seen by the engine wins over it."""
    timezone: str | None = None
    """IANA zone name from the profile; None or unknown: the policy's default zone."""
    suppressed: str | None = None
    """Why the address is on the suppression list (unsubscribed, hard_bounce, complaint), if it
    is: nothing, not even transactional email, goes to it."""
    erased: bool = False
    known: bool = True
    """False while no profile of the customer has reached notify."""
    profile: Mapping[str, Any] = field(default_factory=dict)
    """profiles.v1 JSON, for profile.* conditions."""
    scores: Mapping[str, Any] = field(default_factory=dict)
    """scores.v1 JSON, for scores.* conditions."""

    @classmethod
    def from_records(
        cls,
        customer_id: str,
        profile: BaseModel | Mapping[str, Any] | None,
        scores: BaseModel | Mapping[str, Any] | None = None,
        *,
        suppressed: str | None = None,
        erased: bool = False,
    ) -> "Recipient":
        """From a profiles.v1 and a scores.v1 record (models or their JSON); either may be
        missing (not received yet)."""
        p = _json(profile)
        consent = p.get("consent") or {}
        changed = consent.get("email_marketing_changed_at")
        status = consent.get("email_marketing", "unknown")
        return cls(
            customer_id=customer_id,
            email=p.get("email") or None,
            consent=status if status in ("opted_in", "opted_out") else "unknown",
            consent_at=_time(changed),
            timezone=p.get("timezone") or None,
            suppressed=suppressed,
            erased=erased,
            known=profile is not None,
            profile=p,
            scores=_json(scores),
        )


def _json(record: BaseModel | Mapping[str, Any] | None) -> dict[str, Any]:
    if record is None:
        return {}
    if isinstance(record, BaseModel):
        return record.model_dump(mode="json")
    return dict(record)


def _time(value: Any) -> datetime | None:
    if isinstance(value, str) and value:
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # as schemas read it
