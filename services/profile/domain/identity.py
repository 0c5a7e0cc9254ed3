"""Identity resolution rules: which customer an event belongs to, and which profiles are one.

Customer ids are derived from identities, not drawn at random, so the same events give the same
ids in any order: an identified customer is `cus_` + hash("user:" + userId); a customer known only
by an anonymousId is `cus_` + hash("anon:" + anonymousId) until an identify or alias links that
id to a userId, when it is absorbed into the identified customer.

Rules (Segment semantics):
- identify/track/... with userId U and anonymousId A links A to U. A's customer is absorbed into
  U's, unless A already belongs to a customer with another userId (a shared device): then A
  stays where it is and only this event goes to U.
- alias(previousId P, userId U) says P and U are one person: P's customer (by userId, else by
  anonymousId) is absorbed into U's, whatever it is.
"""

import hashlib
from dataclasses import dataclass
from typing import Literal

from schemas.topics.touchpoints_v1 import Touchpoint

IdentityKind = Literal["user", "anon"]
Identity = tuple[IdentityKind, str]


def customer_id_for(identity: Identity) -> str:
    kind, value = identity
    return "cus_" + hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:24]


def identity_hash(identity: Identity) -> str:
    """What the erasure ledger keeps instead of the identity itself."""
    kind, value = identity
    return hashlib.sha256(f"erased:{kind}:{value}".encode()).hexdigest()


def advisory_lock_key(identity: Identity) -> int:
    """A signed 64-bit key for pg_advisory_xact_lock, so concurrent consumers take turns."""
    digest = hashlib.sha256(f"{identity[0]}:{identity[1]}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class Links:
    """What one event says about identities."""

    user_id: str | None
    anonymous_id: str | None
    alias_of: str | None  # alias: the previousId that is the same person as user_id

    @classmethod
    def of(cls, touchpoint: Touchpoint) -> "Links":
        event = touchpoint.event
        previous = getattr(event, "previous_id", None) if event.type == "alias" else None
        return cls(event.user_id, event.anonymous_id, previous)

    def identities(self) -> list[Identity]:
        found: list[Identity] = []
        if self.user_id:
            found.append(("user", self.user_id))
        if self.anonymous_id:
            found.append(("anon", self.anonymous_id))
        if self.alias_of:
            found += [("user", self.alias_of), ("anon", self.alias_of)]
        return found
