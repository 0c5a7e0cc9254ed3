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
from collections.abc import Iterable
from dataclasses import dataclass, field
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


def event_key(touchpoint: Touchpoint) -> tuple[str, str]:
    """What identifies an event everywhere: its source and messageId (messageIds are chosen by
    clients, so two sources may send the same one)."""
    return touchpoint.source_id, touchpoint.message_id


def event_uid(touchpoint: Touchpoint) -> str:
    """`event_key` as one string, for the records of a profile state."""
    return f"{touchpoint.source_id}\x1f{touchpoint.message_id}"


@dataclass
class Resolution:
    """Where each event goes and which customers were found to be one."""

    target: dict[tuple[str, str], str] = field(default_factory=dict)  # (source, messageId)
    absorbed: dict[str, str] = field(default_factory=dict)  # absorbed id -> survivor id
    links: dict[Identity, str] = field(default_factory=dict)  # identity -> customer id
    user_ids: dict[str, str] = field(default_factory=dict)  # identified customer -> its userId

    def final(self, customer_id: str) -> str:
        while customer_id in self.absorbed:
            customer_id = self.absorbed[customer_id]
        return customer_id


def resolve(
    events: Iterable[Touchpoint], known: dict[Identity, str], users_of: dict[str, str | None]
) -> Resolution:
    """Decide each event's customer and the merges its identities imply (rules above)."""
    resolution = Resolution()
    owner = dict(known)  # identity -> customer id, as it stands while the batch is read
    user_of = dict(users_of)  # customer id -> its userId

    def current(identity: Identity) -> str | None:
        customer_id = owner.get(identity)
        return resolution.final(customer_id) if customer_id else None

    def absorb(customer_id: str, into: str) -> None:
        customer_id, into = resolution.final(customer_id), resolution.final(into)
        if customer_id != into:
            resolution.absorbed[customer_id] = into

    def link(identity: Identity, customer_id: str) -> None:
        owner[identity] = customer_id
        resolution.links[identity] = customer_id

    for event in events:
        links = Links.of(event)
        if links.user_id:
            user: Identity = ("user", links.user_id)
            target = current(user) or customer_id_for(user)
            user_of.setdefault(target, links.user_id)
            resolution.user_ids.setdefault(target, links.user_id)
            if user not in owner:
                link(user, target)
            if links.anonymous_id:
                anon: Identity = ("anon", links.anonymous_id)
                anon_owner = current(anon)
                if anon_owner is None:
                    link(anon, target)
                elif anon_owner != target and user_of.get(anon_owner) in (None, links.user_id):
                    absorb(anon_owner, target)
                    link(anon, target)
            if links.alias_of:
                for previous in (("user", links.alias_of), ("anon", links.alias_of)):
                    previous_owner = current(previous)
                    if previous_owner is None:
                        # Events of the previous id that arrive later belong to the target.
                        link(previous, target)
                    elif previous_owner != resolution.final(target):
                        absorb(previous_owner, target)
                        link(previous, target)
        else:
            assert links.anonymous_id is not None  # the contract requires one of the two
            anon = ("anon", links.anonymous_id)
            target = current(anon) or customer_id_for(anon)
            if anon not in owner:
                link(anon, target)
        resolution.target[event_key(event)] = target
    return resolution
