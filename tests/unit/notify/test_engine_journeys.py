"""The shipped journeys, run by the engine on simulated time (T0 is 13:00 in Paris)."""

from datetime import UTC, datetime, timedelta

from services.notify.domain import RunEntered, Send, notification_id
from tests.unit.notify.factory import (
    CUSTOMER,
    T0,
    Sim,
    cart,
    consent,
    days,
    hours,
    lapsed,
    order,
    recipient,
    referral,
    segment,
    signed_up,
)

MINUTE = timedelta(minutes=1)


def _templates(sim: Sim, journey: str) -> list[tuple[datetime, str]]:
    return [(at, send.template) for at, send in sim.sends() if send.journey == journey]


# Abandoned cart


def test_abandoned_cart_reminds_4h_after_the_last_change_then_24h_later() -> None:
    sim = Sim()
    sim.deliver(cart(T0), T0 + MINUTE)
    sim.run_until(T0 + days(3))
    assert _templates(sim, "abandoned_cart") == [
        (T0 + hours(4), "cart_reminder_1"),
        (T0 + hours(28), "cart_reminder_2"),
    ]
    assert [e.reason for e in sim.exits()] == ["completed"]


def test_an_order_before_the_reminder_ends_the_run_as_converted() -> None:
    sim = Sim()
    sim.deliver(cart(T0), T0 + MINUTE)
    sim.deliver(order(T0 + hours(1)), T0 + hours(3))  # arrives late, still before the send
    sim.run_until(T0 + days(3))
    assert _templates(sim, "abandoned_cart") == []
    assert [(e.journey, e.reason) for e in sim.exits() if e.journey == "abandoned_cart"] == [
        ("abandoned_cart", "converted")
    ]
    assert sim.state.next_wake is not None  # post-purchase and points reminder still run


def test_no_reminder_when_the_order_arrives_before_the_cart_it_ends() -> None:
    sim = Sim()
    sim.deliver(order(T0 + hours(1)), T0 + hours(1))
    sim.deliver(cart(T0), T0 + hours(6))  # the cart change, delayed: its wait has elapsed
    sim.run_until(T0 + days(3))
    assert _templates(sim, "abandoned_cart") == []
    entered = [a for _, a in sim.log if isinstance(a, RunEntered) and a.journey == "abandoned_cart"]
    assert len(entered) == 1  # counted, and ended at once
    assert "converted" in [e.reason for e in sim.exits() if e.journey == "abandoned_cart"]


def test_a_late_cart_change_whose_wait_elapsed_reminds_at_once() -> None:
    sim = Sim()
    sim.deliver(cart(T0), T0 + hours(5))
    assert _templates(sim, "abandoned_cart") == [(T0 + hours(5), "cart_reminder_1")]


def test_a_cart_change_older_than_max_trigger_age_is_history() -> None:
    sim = Sim()
    sim.deliver(cart(T0), T0 + days(2) + MINUTE)
    sim.run_until(T0 + days(5))
    assert sim.log == []


def test_a_newer_cart_change_restarts_the_wait() -> None:
    sim = Sim()
    sim.deliver(cart(T0), T0 + MINUTE)
    sim.deliver(cart(T0 + hours(3), items=2), T0 + hours(3) + MINUTE)
    sim.run_until(T0 + days(3))
    sends = sim.sends()
    assert [(at, s.template) for at, s in sends] == [
        (T0 + hours(7), "cart_reminder_1"),
        (T0 + hours(31), "cart_reminder_2"),
    ]
    assert {s.trigger_event_id for _, s in sends} == {cart(T0 + hours(3)).event_id}
    assert [e.reason for e in sim.exits()] == ["exited", "completed"]


def test_an_older_cart_change_arriving_late_does_not_remind() -> None:
    sim = Sim()
    sim.deliver(cart(T0 + hours(3), items=2), T0 + hours(3))
    sim.deliver(cart(T0), T0 + hours(5))  # older: the newer change already covers it
    sim.run_until(T0 + hours(8))
    assert _templates(sim, "abandoned_cart") == [(T0 + hours(7), "cart_reminder_1")]


def test_an_emptied_cart_ends_the_run() -> None:
    sim = Sim()
    sim.deliver(cart(T0), T0 + MINUTE)
    sim.deliver(cart(T0 + hours(1), items=0), T0 + hours(1))
    sim.run_until(T0 + days(3))
    assert sim.sends() == []
    assert sim.state.runs == ()


def test_the_second_reminder_is_cancelled_by_an_order_after_the_first() -> None:
    sim = Sim()
    sim.deliver(cart(T0), T0 + MINUTE)
    sim.deliver(order(T0 + hours(10)), T0 + hours(10))
    sim.run_until(T0 + days(3))
    assert _templates(sim, "abandoned_cart") == [(T0 + hours(4), "cart_reminder_1")]


def test_a_redelivered_cart_change_changes_nothing() -> None:
    sim = Sim()
    sim.deliver(cart(T0), T0 + MINUTE)
    before = sim.state
    decision = sim.deliver(cart(T0), T0 + hours(1))
    assert decision.actions == ()
    assert sim.state == before
    sim.deliver(cart(T0), T0 + hours(5))  # again, after the first reminder
    sim.run_until(T0 + days(3))
    ids = [s.notification_id for _, s in sim.sends()]
    assert len(ids) == len(set(ids)) == 2


def test_notification_ids_are_journey_customer_run_and_step() -> None:
    sim = Sim()
    sim.deliver(cart(T0), T0 + MINUTE)
    sim.run_until(T0 + hours(5))
    (_, send), *_ = sim.sends()
    key = cart(T0).event_id
    assert send.notification_id == notification_id("abandoned_cart", CUSTOMER, key, 1)
    assert send.context["trigger"]["cart_id"] == "cart-1"
    assert send.to == "ann@example.com"


def test_an_exit_arriving_while_the_send_waits_out_quiet_hours_cancels_it() -> None:
    evening = datetime(2026, 3, 10, 17, 30, tzinfo=UTC)  # 18:30 in Paris; due at 22:30 there
    sim = Sim()
    sim.deliver(cart(evening), evening)
    sim.run_until(evening + hours(5))
    assert sim.sends() == []
    assert sim.state.next_wake == datetime(2026, 3, 11, 7, 0, tzinfo=UTC)  # 08:00 in Paris
    sim.deliver(order(evening + hours(6)), evening + hours(6))
    sim.run_until(evening + days(3))
    assert _templates(sim, "abandoned_cart") == []


def test_quiet_hours_delay_the_reminder_to_the_next_allowed_local_moment() -> None:
    evening = datetime(2026, 3, 10, 17, 30, tzinfo=UTC)
    sim = Sim()
    sim.deliver(cart(evening), evening)
    sim.run_until(evening + days(3))
    assert _templates(sim, "abandoned_cart") == [
        (datetime(2026, 3, 11, 7, 0, tzinfo=UTC), "cart_reminder_1"),  # 08:00 Paris
        (datetime(2026, 3, 12, 7, 0, tzinfo=UTC), "cart_reminder_2"),  # 24 h later
    ]


def test_quiet_hours_across_a_daylight_saving_change() -> None:
    # New York springs forward on 2026-03-08 at 02:00: the night is an hour shorter.
    late = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)  # 23:00 EST on the 7th
    sim = Sim(recipient=recipient(timezone="America/New_York"))
    sim.deliver(cart(late), late)
    sim.run_until(late + hours(12))
    assert _templates(sim, "abandoned_cart") == [
        (datetime(2026, 3, 8, 12, 0, tzinfo=UTC), "cart_reminder_1")  # 08:00 EDT
    ]


# Post-purchase


def test_post_purchase_thanks_then_asks_for_a_review_then_recommends() -> None:
    sim = Sim(recipient=recipient(points=0))
    sim.deliver(order(T0), T0 + MINUTE)
    sim.run_until(T0 + days(40))
    assert _templates(sim, "post_purchase") == [
        (T0 + MINUTE, "order_thank_you"),
        (T0 + MINUTE + days(7), "review_request"),
        (T0 + MINUTE + days(14), "recommendations"),
    ]
    kinds = [s.kind for _, s in sim.sends() if s.journey == "post_purchase"]
    assert kinds == ["transactional", "marketing", "marketing"]


def test_post_purchase_without_recommendations_stops_before_them() -> None:
    sim = Sim(recipient=recipient(recommendations=()))
    sim.deliver(order(T0), T0 + MINUTE)
    sim.run_until(T0 + days(40))
    assert [t for _, t in _templates(sim, "post_purchase")] == ["order_thank_you", "review_request"]
    assert "condition_failed" in [e.reason for e in sim.exits() if e.journey == "post_purchase"]


def test_the_thank_you_is_transactional_the_rest_needs_consent() -> None:
    night = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    sim = Sim(recipient=recipient(consent="unknown", consent_at=None))
    sim.deliver(order(night), night)
    sim.run_until(night + days(20))
    assert _templates(sim, "post_purchase") == [(night, "order_thank_you")]  # at once, at night
    reasons = [
        (s.template, s.reason) for _, s in sim.suppressions() if s.journey == "post_purchase"
    ]
    assert reasons == [("review_request", "no_consent"), ("recommendations", "no_consent")]


def test_historical_orders_start_nothing() -> None:
    sim = Sim()
    sim.deliver(order(T0 - days(40), historical=True), T0)
    sim.deliver(order(T0, "o-2", historical=True), T0)  # even if recent: the flag decides
    sim.run_until(T0 + days(40))
    assert sim.log == []


def test_one_post_purchase_run_per_order() -> None:
    sim = Sim()
    sim.deliver(order(T0), T0)
    sim.deliver(order(T0, event_id="order:o-1:again"), T0 + hours(1))  # same order, new event
    sim.run_until(T0 + hours(2))
    assert [t for _, t in _templates(sim, "post_purchase")] == ["order_thank_you"]


# Win-back


def test_win_back_tries_twice_then_sunsets_at_ten_local() -> None:
    sim = Sim()
    sim.deliver(lapsed(T0), T0)  # 13:00 in Paris: 10:00 is tomorrow
    sim.run_until(T0 + days(30))
    ten = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
    assert _templates(sim, "win_back") == [
        (ten, "winback_1"),
        (ten + days(7), "winback_2"),
        (ten + days(21), "winback_sunset"),
    ]
    assert [e.reason for e in sim.exits()] == ["completed"]


def test_an_order_wins_the_customer_back() -> None:
    sim = Sim()
    sim.deliver(segment(T0, "churn_risk", "high"), T0)
    sim.run_until(T0 + days(2))
    sim.deliver(order(T0 + days(3)), T0 + days(3))
    sim.run_until(T0 + days(30))
    assert [t for _, t in _templates(sim, "win_back")] == ["winback_1"]
    assert [e.reason for e in sim.exits() if e.journey == "win_back"] == ["converted"]


def test_win_back_waits_out_its_cooldown() -> None:
    sim = Sim()
    sim.deliver(lapsed(T0), T0)
    sim.deliver(segment(T0 + hours(1), "churn_risk", "high"), T0 + hours(1))  # the same lapse
    sim.run_until(T0 + days(80))
    sim.deliver(segment(T0 + days(80), "churn_risk", "high"), T0 + days(80))
    sim.run_until(T0 + days(91))
    sim.deliver(lapsed(T0 + days(91)), T0 + days(91))
    sim.run_until(T0 + days(93))
    firsts = [at for at, t in _templates(sim, "win_back") if t == "winback_1"]
    assert firsts == [
        datetime(2026, 3, 11, 9, 0, tzinfo=UTC),
        datetime(2026, 6, 10, 8, 0, tzinfo=UTC),
    ]


# Points reminder


def test_points_reminder_after_30_days_without_an_order() -> None:
    sim = Sim(recipient=recipient(points=600))
    sim.deliver(order(T0), T0)
    sim.run_until(T0 + days(31))
    assert _templates(sim, "points_reminder") == [(T0 + days(30), "points_reminder")]


def test_points_reminder_waits_for_30_days_after_the_latest_order() -> None:
    sim = Sim(recipient=recipient(points=600))
    sim.deliver(order(T0), T0)
    sim.deliver(order(T0 + days(10), "o-2"), T0 + days(10))
    sim.run_until(T0 + days(45))
    assert _templates(sim, "points_reminder") == [(T0 + days(40), "points_reminder")]
    exits = [e for e in sim.exits() if e.journey == "points_reminder"]
    assert [(e.run_key, e.reason) for e in exits] == [("o-1", "exited"), ("o-2", "completed")]


def test_points_reminder_needs_the_balance() -> None:
    sim = Sim(recipient=recipient(points=499))
    sim.deliver(order(T0), T0)
    sim.run_until(T0 + days(31))
    assert _templates(sim, "points_reminder") == []
    assert "condition_failed" in [e.reason for e in sim.exits() if e.journey == "points_reminder"]


def test_an_order_that_arrives_late_still_stops_the_points_reminder() -> None:
    sim = Sim(recipient=recipient(points=600))
    sim.deliver(order(T0 + hours(1), "o-2"), T0 + hours(1))  # the newer order arrives first
    sim.deliver(order(T0), T0 + days(1))  # the older one a day late: o-2 already followed it
    sim.run_until(T0 + days(50))
    keys = [s.context["run_key"] for _, s in sim.sends() if s.journey == "points_reminder"]
    assert keys == ["o-2"]


# Welcome, upgrades, referral


def test_welcome_once_after_sign_up_or_opt_in() -> None:
    sim = Sim()
    sim.deliver(signed_up(T0), T0)
    sim.deliver(consent(T0 + MINUTE, "opted_in"), T0 + MINUTE)
    sim.run_until(T0 + days(1))
    assert _templates(sim, "welcome") == [(T0 + timedelta(minutes=10), "welcome")]
    sim.deliver(consent(T0 + days(2), "opted_in", event_id="again"), T0 + days(2))
    sim.run_until(T0 + days(3))
    assert len(_templates(sim, "welcome")) == 1


def test_welcome_sees_the_opt_in_that_follows_the_sign_up() -> None:
    sim = Sim(recipient=recipient(consent="unknown", consent_at=None))  # profile copy lags
    sim.deliver(signed_up(T0), T0)
    sim.deliver(consent(T0 + MINUTE, "opted_in"), T0 + MINUTE * 2)
    sim.run_until(T0 + days(1))
    assert [t for _, t in _templates(sim, "welcome")] == ["welcome"]


def test_tier_and_ladder_congratulations_once_per_step_reached() -> None:
    sim = Sim()
    sim.deliver(segment(T0, "value_tier", "potential"), T0)
    sim.deliver(segment(T0 + days(1), "value_tier", "low_value", "down"), T0 + days(1))
    sim.deliver(segment(T0 + days(2), "value_tier", "potential"), T0 + days(2))
    sim.deliver(segment(T0 + days(3), "ladder_step", "customer"), T0 + days(3))
    sim.deliver(segment(T0 + days(4), "ladder_step", "client"), T0 + days(4))
    sim.deliver(segment(T0 + days(5), "rfm_segment", "champions", None), T0 + days(5))
    sim.run_until(T0 + days(6))
    assert [(s.template, s.context["trigger"]["to_segment"]) for _, s in sim.sends()] == [
        ("tier_upgrade", "potential"),
        ("ladder_step_up", "client"),
    ]


def test_referral_thanks_the_referrer_once_per_referred_customer() -> None:
    sim = Sim()
    sim.deliver(referral(T0, "c-2"), T0)
    sim.deliver(referral(T0, "c-2"), T0 + hours(1))
    sim.deliver(referral(T0 + days(1), "c-3"), T0 + days(1))
    sim.run_until(T0 + days(2))
    sends = [s for _, s in sim.sends()]
    assert [s.context["trigger"]["referred_customer_id"] for s in sends] == ["c-2", "c-3"]
    assert all(isinstance(s, Send) and s.template == "referral_thank_you" for s in sends)
