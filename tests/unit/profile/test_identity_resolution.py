"""Identity resolution gives the same customers whatever order and batches the events come in."""

from itertools import permutations

import pytest

from schemas.topics.touchpoints_v1 import Touchpoint
from services.profile.domain.identity import Identity, customer_id_for, resolve
from tests.unit.profile.factory import at, touchpoint


def _event(raw: dict[str, object], message_id: str) -> Touchpoint:
    return touchpoint(raw, when=at(0), message_id=message_id)


# One person: browses anonymously on two devices, identifies on one, is aliased from the other.
EVENTS = [
    _event({"type": "page", "anonymousId": "phone", "name": "Home"}, "m1"),
    _event({"type": "page", "anonymousId": "laptop", "name": "Shoes"}, "m2"),
    _event({"type": "identify", "userId": "ada", "anonymousId": "laptop"}, "m3"),
    _event({"type": "alias", "previousId": "phone", "userId": "ada"}, "m4"),
    _event({"type": "track", "userId": "ada", "event": "Clicked"}, "m5"),
    _event({"type": "page", "anonymousId": "phone", "name": "Cart"}, "m6"),
]
ADA = customer_id_for(("user", "ada"))


def _deliver(batches: list[list[Touchpoint]]) -> dict[tuple[str, str], str]:
    """Resolve batch by batch, keeping what the store would keep between batches."""
    known: dict[Identity, str] = {}
    users: dict[str, str | None] = {}
    placed: dict[tuple[str, str], str] = {}
    for batch in batches:
        resolution = resolve(batch, known, users)
        known.update(resolution.links)
        known = {identity: resolution.final(c) for identity, c in known.items()}
        users.update({resolution.final(c): u for c, u in resolution.user_ids.items()})
        placed.update(resolution.target)
        placed = {key: resolution.final(c) for key, c in placed.items()}
    return placed


@pytest.mark.parametrize("split", [0, 2, 4])
def test_every_order_and_split_puts_every_event_on_the_identified_customer(split: int) -> None:
    for order in permutations(EVENTS):
        batches = [list(order[:split]), list(order[split:])]
        placed = _deliver([b for b in batches if b])
        assert set(placed.values()) == {ADA}, [e.message_id for e in order]


def test_a_shared_device_does_not_merge_two_people() -> None:
    placed = _deliver(
        [
            [_event({"type": "identify", "userId": "ada", "anonymousId": "kiosk"}, "k1")],
            [_event({"type": "identify", "userId": "bob", "anonymousId": "kiosk"}, "k2")],
        ]
    )
    assert placed[("src_1", "k1")] == ADA
    assert placed[("src_1", "k2")] == customer_id_for(("user", "bob"))
