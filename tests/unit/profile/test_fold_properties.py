"""DESIGN rule 4 as properties: the profile is a function of the set of events.

Generated histories mix every event the fold reads, for one userId and up to three
anonymousIds, with times on a coarse grid (so ties happen), overlapping order ids, and
redelivered copies of events.
"""

import json
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.topics.profiles_v1 import ProfileSnapshot
from schemas.topics.touchpoints_v1 import Touchpoint
from services.profile.domain import (
    LoyaltyRule,
    ProfileState,
    fold,
    lifecycle_signals,
    merge,
    to_snapshot,
)
from tests.unit.profile.factory import at, touchpoint

EMPTY = ProfileState()
RULE = LoyaltyRule()
PROPERTIES = settings(max_examples=100, deadline=None)

ANONYMOUS_IDS = ("a1", "a2", "a3")
# Strategies are built once here: building them inside each draw costs more than the test.
ANONYMOUS_ID = st.sampled_from(ANONYMOUS_IDS)
ORDER_ID = st.sampled_from(("o1", "o2", "o3"))
PRODUCT_ID = st.sampled_from(("p1", "p2", "p3"))
# Mostly real amounts; a free order now and then.
CENTS = (st.integers(min_value=1, max_value=50_000) | st.just(0)).map(lambda c: c / 100)

PRODUCT = st.fixed_dictionaries(
    {"product_id": PRODUCT_ID},
    optional={
        "price": CENTS,
        "quantity": st.integers(min_value=0, max_value=3),
        "category": st.sampled_from(("shoes", "hats")),
    },
)
PAGE = st.fixed_dictionaries(
    {
        "url": st.sampled_from(
            (
                "https://shop.example/",
                "https://shop.example/p?utm_source=google&utm_medium=cpc",
                "https://shop.example/?gclid=abc",
            )
        )
    },
    optional={
        "referrer": st.sampled_from(
            (
                "https://www.google.com/",
                "https://t.co/x",
                "https://blog.example.org/post",
                "https://shop.example/cart",
            )
        )
    },
)
CONTEXT = st.fixed_dictionaries(
    {},
    optional={
        "page": PAGE,
        "campaign": st.sampled_from(
            (
                {"source": "newsletter", "medium": "email", "name": "spring"},
                {"source": "facebook", "medium": "paid_social"},
                {"source": "partnerco", "medium": "affiliate"},
            )
        ),
        "timezone": st.sampled_from(("Europe/Paris", "America/New_York")),
        "locale": st.sampled_from(("fr-FR", "en-US")),
    },
)


def _track(name: str | Sequence[str], properties: st.SearchStrategy[dict[str, Any]]) -> Any:
    names = st.sampled_from([name] if isinstance(name, str) else list(name))
    return st.builds(lambda n, p: {"type": "track", "event": n, "properties": p}, names, properties)


def _props(
    required: dict[str, st.SearchStrategy[Any]] | None = None,
    **optional: st.SearchStrategy[Any],
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required or {}, optional=optional)


ORDER = _track(
    "Order Completed",
    _props(
        {
            "order_id": ORDER_ID,
            "revenue": CENTS,
            "currency": st.sampled_from(("USD", "EUR")),
            "products": st.lists(PRODUCT, max_size=3),
        },
        affiliation=st.just("Partner Shop"),
    ),
)
REFUND = _track(
    "Order Refunded",
    _props({"order_id": ORDER_ID})  # no amount: the whole order
    | _props({"order_id": ORDER_ID, "total": CENTS})
    | _props({"order_id": ORDER_ID, "products": st.lists(PRODUCT, min_size=1, max_size=2)}),
)
ADDED = _track("Product Added", PRODUCT.map(lambda p: {**p, "cart_id": "c1"}))
REMOVED = _track("Product Removed", _props({"product_id": PRODUCT_ID}, quantity=st.integers(0, 3)))
IDENTIFY = _props(
    {
        "type": st.just("identify"),
        "traits": _props(
            {"plan": st.sampled_from(("free", "pro", "vip"))},
            email=st.sampled_from(("Ann@Example.com", "bob@example.org", "bad")),
            marketing_opt_in=st.booleans(),
            unsubscribed=st.booleans(),
        ),
    }
)
OTHER_BODIES: list[st.SearchStrategy[dict[str, Any]]] = [
    IDENTIFY,
    IDENTIFY,  # twice: traits written by several events is where last-writer-wins shows
    st.just({"type": "page"}),
    st.just({"type": "screen", "name": "Home"}),
    _props({"type": st.just("alias"), "previousId": ANONYMOUS_ID}),
    _track("Order Cancelled", _props({"order_id": ORDER_ID})),
    _track("Checkout Started", _props(value=CENTS)),
    _track("Product Viewed", _props({"product_id": PRODUCT_ID})),
    _track(("Email Opened", "Email Link Clicked", "Email Delivered", "Email Sent"), _props()),
    _track("Unsubscribed", _props(list_id=st.just("news"))),
    _track(
        ("Support Ticket Opened", "Support Ticket Resolved"),
        _props({"ticket_id": st.sampled_from(("t1", "t2"))}),
    ),
    _track("Review Submitted", _props(rating=st.sampled_from((1, 2.5, 4, 5)))),
    _track(
        "Referral Code Used",
        _props(
            {"referral_code": st.sampled_from(("FRIEND1", "FRIEND2"))},
            referrer_id=st.sampled_from(("u7", "u8")),
        ),
    ),
    _track(
        "Signed Up",
        _props(
            email=st.just("ann@example.com"),
            referral_code=st.just("FRIEND3"),
            accepts_marketing=st.booleans(),
        ),
    ),
    _track("Loyalty Points Redeemed", _props({"points": st.integers(0, 500)})),
]
# Commerce is where the rules are, so it is drawn most often.
BODY = st.one_of(*[ORDER] * 4, *[REFUND] * 2, *[ADDED] * 3, *[REMOVED] * 2, *OTHER_BODIES)
# body, context, who sent it (0: userId, 1: anonymousId, 2: both), anonymousId, hour
EVENT = st.tuples(BODY, CONTEXT, st.integers(0, 2), ANONYMOUS_ID, st.integers(0, 48))


@st.composite
def histories(draw: st.DrawFn) -> list[Touchpoint]:
    """Distinct events (unique messageIds) of one customer."""
    size = draw(st.integers(min_value=0, max_value=30))  # lists default to short ones
    out: list[Touchpoint] = []
    for i, (body, context, who, anonymous_id, hour) in enumerate(
        draw(st.lists(EVENT, min_size=size, max_size=size))
    ):
        raw = {**body, "context": context} if context else dict(body)
        if who != 1 or raw["type"] == "alias":
            raw["userId"] = "u1"
        if who != 0:
            raw["anonymousId"] = anonymous_id
        # A coarse grid of event times: ties between different events are common.
        out.append(touchpoint(raw, when=at(hour), message_id=f"m{i:03d}"))
    return out


def redelivered(data: st.DataObject, events: list[Touchpoint]) -> list[Touchpoint]:
    """The events in any order, some of them more than once."""
    copies = data.draw(st.lists(st.sampled_from(events), max_size=10)) if events else []
    return data.draw(st.permutations([*events, *copies]))


def snapshot(state: ProfileState) -> ProfileSnapshot:
    return to_snapshot(
        state,
        customer_id="c1",
        revision=1,
        updated_at=at(100),
        loyalty=RULE,
        merged_customer_ids=[],
    )


def fold_in_chunks(chunks: Sequence[Sequence[Touchpoint]]) -> ProfileState:
    """What the consumer does: each batch folds only messageIds the store had not seen."""
    stored: set[str] = set()
    state = EMPTY
    for chunk in chunks:
        new = [tp for tp in chunk if tp.message_id not in stored]
        stored.update(tp.message_id for tp in new)
        state = fold(state, new)  # duplicates within `new` are fold's to drop
    return state


def chunked(data: st.DataObject, events: list[Touchpoint]) -> list[list[Touchpoint]]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(events)), max_size=6)))
    bounds = [0, *cuts, len(events)]
    return [events[a:b] for a, b in pairwise(bounds)]


def split(data: st.DataObject, events: list[Touchpoint], parts: int) -> list[list[Touchpoint]]:
    """Disjoint sets of events: each messageId goes to one part."""
    out: list[list[Touchpoint]] = [[] for _ in range(parts)]
    for tp in events:
        out[data.draw(st.integers(0, parts - 1))].append(tp)
    return out


@PROPERTIES
@given(histories(), st.data())
def test_any_order_and_any_duplicates_give_the_same_profile(
    events: list[Touchpoint], data: st.DataObject
) -> None:
    expected = fold(EMPTY, events)
    got = fold(EMPTY, redelivered(data, events))
    assert got == expected
    assert snapshot(got) == snapshot(expected)


@PROPERTIES
@given(histories(), st.data())
def test_any_split_into_batches_gives_the_same_state(
    events: list[Touchpoint], data: st.DataObject
) -> None:
    expected = fold(EMPTY, events)
    delivered = redelivered(data, events)
    assert fold_in_chunks(chunked(data, delivered)) == expected


@PROPERTIES
@given(histories(), st.data())
def test_merge_is_the_fold_of_the_union(events: list[Touchpoint], data: st.DataObject) -> None:
    a, b, c = (fold(EMPTY, part) for part in split(data, events, 3))
    stored = (a.to_json(), b.to_json(), c.to_json())
    everything = fold(EMPTY, events)
    assert merge(a, b) == merge(b, a)
    assert merge(merge(a, b), c) == merge(a, merge(b, c)) == everything
    assert merge(EMPTY, a) == a == merge(a, EMPTY)
    assert snapshot(merge(merge(c, a), b)) == snapshot(everything)
    # Neither merge nor fold changes the states it is given.
    fold(a, events)
    assert (a.to_json(), b.to_json(), c.to_json()) == stored


@PROPERTIES
@given(histories())
def test_the_state_survives_a_json_round_trip(events: list[Touchpoint]) -> None:
    state = fold(EMPTY, events)
    stored = state.to_json()
    text = json.dumps(stored, allow_nan=False)  # JSON-native values only
    assert ProfileState.from_json(json.loads(text)) == state
    assert ProfileState.from_json(stored).to_json() == stored


@PROPERTIES
@given(histories(), st.data())
def test_signals_announce_each_order_once_whatever_the_batches(
    events: list[Touchpoint], data: st.DataObject
) -> None:
    stored: set[str] = set()
    state = EMPTY
    signals: list[Any] = []
    for chunk in chunked(data, redelivered(data, events)):
        new = [tp for tp in chunk if tp.message_id not in stored]
        stored.update(tp.message_id for tp in new)
        after = fold(state, new)
        found = lifecycle_signals(state, after, customer_id="c1", now=at(72))
        # A redelivered batch (same before, same events) announces the same ids.
        assert lifecycle_signals(state, fold(state, new), customer_id="c1", now=at(72)) == found
        signals.extend(found)
        state = after
    kinds = Counter(s.type for s in signals)
    completed = Counter(s.order_id for s in signals if s.type == "order_completed")
    assert completed == Counter(list(state.orders))
    assert kinds["first_order"] == (1 if state.orders else 0)
    assert len({s.event_id for s in signals}) == len(signals)
    # Seen from long after, the history is announced as such (for the ledger) and is news for
    # no journey; consent still counts.
    late = lifecycle_signals(EMPTY, state, customer_id="c1", now=at(72), max_age=timedelta(0))
    assert {s.type for s in late} <= {"consent_changed", "order_completed"}
    assert all(s.historical for s in late if s.type == "order_completed")
