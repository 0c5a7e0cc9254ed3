"""The harness's own rules, without infrastructure: whose event is whose, what the generator
says a customer did, when they had consent, and how many copies of an email may exist."""

from datetime import UTC, datetime
from decimal import Decimal

from services.profile.domain.identity import customer_id_for
from tests.chaos.verify import Tally, _allowed_copies, customer_of, expected_customers


def _event(message_id: str, **fields: object) -> dict[str, object]:
    return {
        "messageId": message_id,
        "type": "track",
        "timestamp": "2026-12-01T10:00:00.000Z",
    } | fields


def test_an_anonymous_visit_belongs_to_the_user_who_identified_on_that_device() -> None:
    events = [
        _event("m1", type="page", anonymousId="a1"),
        _event("m2", type="identify", anonymousId="a1", userId="u1"),
        _event("m3", type="page", anonymousId="a2"),
    ]
    owners = customer_of(events)
    assert owners["m1"] == owners["m2"] == customer_id_for(("user", "u1"))
    assert owners["m3"] == customer_id_for(("anon", "a2"))


def test_the_ledger_counts_page_views_orders_and_the_last_consent_said() -> None:
    events = [
        _event("m1", type="page", userId="u1"),
        _event("m2", type="page", userId="u1"),
        _event(
            "m3",
            type="identify",
            userId="u1",
            traits={"email": "a@example.com", "email_marketing_consent": True},
        ),
        _event(
            "m4",
            event="Order Completed",
            userId="u1",
            properties={"order_id": "o1", "revenue": 12.5},
        ),
        _event("m5", event="Unsubscribed", userId="u1", timestamp="2026-12-01T12:00:00.000Z"),
    ]
    [customer] = expected_customers(events).values()
    assert customer.page_views == 2
    assert customer.orders == {"o1": Decimal("12.5")}
    assert customer.email == "a@example.com"
    assert customer.consented_at(datetime(2026, 12, 1, 11, tzinfo=UTC))
    assert not customer.consented_at(datetime(2026, 12, 1, 12, 30, tzinfo=UTC))
    assert not customer.consented_at(datetime(2026, 12, 1, 9, tzinfo=UTC))  # not yet asked


def test_copies_allowed_follow_the_notify_design() -> None:
    assert _allowed_copies("sent", "marketing") == (1, 1)
    assert _allowed_copies("uncertain", "transactional") == (1, 2)
    assert _allowed_copies("uncertain", "marketing") == (0, 1)
    assert _allowed_copies("suppressed", "marketing") == (0, 0)
    assert _allowed_copies("sending", "transactional") is None  # never settled: counted lost


def test_a_tally_is_clean_only_without_any_lost_doubled_or_wrong_effect() -> None:
    tally = Tally()
    tally.note("lost", 0, "nothing")
    assert tally.clean
    assert not tally.problems
    tally.note("duplicated", 2, "an email twice")
    assert not tally.clean
    assert tally.problems == ["duplicated 2: an email twice"]
