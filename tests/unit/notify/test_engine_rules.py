"""Rules that hold across journeys: consent, suppression, erasure, caps, merges, disabled
journeys, condition waits, and the records the shell publishes."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from schemas.topics.notifications_v1 import NotificationEvent
from services.notify.domain import (
    Catalog,
    CustomerState,
    Policy,
    Recipient,
    RunExited,
    Send,
    Suppress,
    load_catalog,
    on_due,
    on_event,
    on_merge,
    on_update,
)
from services.notify.domain.catalog import parse_journey
from tests.unit.notify.factory import (
    CATALOG,
    T0,
    Sim,
    cart,
    consent,
    days,
    erased,
    hours,
    order,
    recipient,
    referral,
    signed_up,
)

NO_QUIET = Policy(quiet_hours=None)


def _reasons(sim: Sim) -> list[tuple[str, str]]:
    return [(s.template, s.reason) for _, s in sim.suppressions()]


# Consent and suppression


def test_marketing_needs_an_opt_in() -> None:
    sim = Sim(recipient=recipient(consent="unknown", consent_at=None))
    sim.deliver(cart(T0), T0)
    sim.run_until(T0 + days(3))
    assert sim.sends() == []
    assert _reasons(sim) == [("cart_reminder_1", "no_consent"), ("cart_reminder_2", "no_consent")]


def test_an_opt_out_suppresses_as_unsubscribed() -> None:
    sim = Sim(recipient=recipient(consent="opted_out"))
    sim.deliver(referral(T0), T0)
    assert _reasons(sim) == [("referral_thank_you", "unsubscribed")]


def test_an_opt_out_event_newer_than_the_profile_copy_wins() -> None:
    sim = Sim()  # the profile copy says opted_in (since January)
    sim.deliver(cart(T0), T0)
    sim.deliver(consent(T0 + hours(1), "opted_out"), T0 + hours(1))
    sim.run_until(T0 + days(3))
    assert sim.sends() == []
    assert _reasons(sim)[0] == ("cart_reminder_1", "unsubscribed")


def test_a_profile_consent_newer_than_the_event_wins() -> None:
    later = recipient(consent="opted_in", consent_at=T0 + hours(2))
    sim = Sim(recipient=later)
    sim.deliver(consent(T0 + hours(1), "opted_out"), T0 + hours(1))
    sim.deliver(cart(T0), T0 + hours(1))
    sim.run_until(T0 + hours(5))
    assert [t for _, t in sim.sent()] == ["cart_reminder_1"]


def test_an_opt_out_wins_a_tie_with_an_opt_in() -> None:
    sim = Sim(recipient=recipient(consent="unknown", consent_at=None))
    sim.deliver(consent(T0, "opted_in", event_id="b"), T0)
    sim.deliver(consent(T0, "opted_out", event_id="a"), T0)
    sim.deliver(referral(T0), T0)
    assert _reasons(sim) == [("referral_thank_you", "unsubscribed")]


def test_a_suppressed_address_gets_nothing_not_even_transactional() -> None:
    sim = Sim(recipient=recipient(suppressed="hard_bounce"))
    sim.deliver(order(T0), T0)
    sim.run_until(T0 + days(20))
    assert sim.sends() == []
    suppressed = sim.suppressions()
    assert {(s.kind, s.reason, s.detail) for _, s in suppressed} == {
        ("transactional", "suppressed_address", "hard_bounce"),
        ("marketing", "suppressed_address", "hard_bounce"),
    }


def test_no_address_no_email() -> None:
    sim = Sim(recipient=recipient(email=None))
    sim.deliver(order(T0), T0)
    assert _reasons(sim) == [("order_thank_you", "no_email_address")]


def test_transactional_ignores_consent_caps_and_quiet_hours() -> None:
    night = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)  # midnight in Paris
    sim = Sim(recipient=recipient(consent="opted_out"))
    for n in range(4):
        sim.deliver(order(night + timedelta(minutes=n), f"o-{n}"), night + timedelta(minutes=n))
    assert [t for _, t in sim.sent()] == ["order_thank_you"] * 4


# Erasure


def test_erasure_ends_every_run_and_forgets_the_customer() -> None:
    sim = Sim()
    sim.deliver(cart(T0), T0)
    sim.deliver(order(T0 + hours(1)), T0 + hours(1))
    sends_before = len(sim.sends())
    decision = sim.deliver(erased(T0 + hours(2)), T0 + hours(2))
    assert decision.state == CustomerState(erased_at=T0 + hours(2))  # a tombstone, no data
    assert not decision.state.is_empty
    assert decision.next_wake is None
    assert {a.reason for a in decision.actions if isinstance(a, RunExited)} == {"erased"}
    assert not any(isinstance(a, Send | Suppress) for a in decision.actions)
    sim.run_until(T0 + days(40))
    assert len(sim.sends()) == sends_before


def test_events_from_before_the_erasure_still_in_flight_change_nothing() -> None:
    sim = Sim()
    sim.deliver(erased(T0 + hours(2)), T0 + hours(2))
    tombstone = sim.state
    for event in (signed_up(T0), consent(T0 + hours(1), "opted_in"), cart(T0 + hours(2))):
        assert sim.deliver(event, T0 + hours(3)).actions == ()
    assert sim.state == tombstone
    sim.deliver(cart(T0 + hours(4)), T0 + hours(4))  # after the erasure: a new life
    sim.run_until(T0 + hours(20))
    assert sim.sent() == [(T0 + hours(19), "cart_reminder_1")]  # 08:00 in Paris
    assert sim.state.erased_at == T0 + hours(2)


def test_an_erased_recipient_is_sent_nothing_whatever_arrives() -> None:
    state = on_event(CATALOG, CustomerState(), recipient(), cart(T0), T0).state
    gone = recipient(erased=True)
    decision = on_due(CATALOG, state, gone, T0 + hours(5))
    assert decision.state.runs == ()
    assert not decision.sends
    assert decision.state.erased_at == T0 + hours(5)
    decision = on_event(CATALOG, CustomerState(), gone, order(T0), T0)
    assert decision.actions == ()
    assert decision.state == CustomerState(erased_at=T0)


# Frequency caps


def test_one_marketing_email_per_16_hours() -> None:
    sim = Sim(policy=NO_QUIET)
    sim.deliver(referral(T0, "c-2"), T0)
    sim.deliver(referral(T0 + hours(15), "c-3"), T0 + hours(15))
    sim.deliver(referral(T0 + hours(16), "c-4"), T0 + hours(16))
    assert [t for t, _ in sim.sent()] == [T0, T0 + hours(16)]
    assert [(s.reason, s.detail) for _, s in sim.suppressions()] == [("frequency_cap", "1/16h")]


def test_three_marketing_emails_per_7_days() -> None:
    sim = Sim(policy=NO_QUIET)
    for n in range(5):
        sim.deliver(referral(T0 + hours(16 * n), f"c-{n}"), T0 + hours(16 * n))
    sim.deliver(referral(T0 + days(7), "c-9"), T0 + days(7))
    assert [t for t, _ in sim.sent()] == [T0, T0 + hours(16), T0 + hours(32), T0 + days(7)]
    assert [s.detail for _, s in sim.suppressions()] == ["3/7d", "3/7d"]


def test_caps_are_configurable_and_transactional_email_does_not_count() -> None:
    policy = Policy(quiet_hours=None, caps=())
    sim = Sim(policy=policy)
    sim.deliver(order(T0), T0)
    for n in range(4):
        sim.deliver(referral(T0 + hours(n), f"c-{n}"), T0 + hours(n))
    assert len(sim.sends()) == 5
    sim = Sim(policy=NO_QUIET)
    sim.deliver(order(T0), T0)  # the transactional thank-you
    sim.deliver(referral(T0 + hours(1)), T0 + hours(1))
    assert [t for _, t in sim.sent()] == ["order_thank_you", "referral_thank_you"]


def test_a_clock_stepping_back_cannot_squeeze_a_send_in() -> None:
    state = on_event(CATALOG, CustomerState(), recipient(), referral(T0, "c-2"), T0, NO_QUIET).state
    earlier = T0 - hours(10)  # another replica, behind
    decision = on_event(CATALOG, state, recipient(), referral(earlier, "c-3"), earlier, NO_QUIET)
    assert decision.sends == ()
    assert decision.suppressions[0].reason == "frequency_cap"


# Merges, disabled journeys, condition waits


def test_a_merge_keeps_caps_and_refuses_a_second_welcome() -> None:
    survivor = Sim(policy=NO_QUIET)
    survivor.deliver(signed_up(T0), T0)
    survivor.run_until(T0 + hours(1))
    assert [t for _, t in survivor.sent()] == ["welcome"]  # done: the run has ended
    minute = timedelta(minutes=1)
    absorbed = on_event(
        CATALOG, CustomerState(), recipient(), signed_up(T0 + minute), T0 + minute, NO_QUIET
    ).state
    absorbed = on_event(
        CATALOG, absorbed, recipient(), cart(T0 + 2 * minute), T0 + 2 * minute, NO_QUIET
    ).state
    assert {r.journey for r in absorbed.runs} == {"welcome", "abandoned_cart"}
    now = T0 + hours(1)
    decision = on_merge(CATALOG, survivor.state, [absorbed], recipient(), now, NO_QUIET)
    merged_away = [a for a in decision.actions if isinstance(a, RunExited)]
    assert [(a.journey, a.reason) for a in merged_away] == [("welcome", "merged")]
    assert decision.sends == ()
    assert {r.journey for r in decision.state.runs} == {"abandoned_cart"}
    later = on_due(CATALOG, decision.state, recipient(), T0 + hours(5), NO_QUIET)
    assert [(s.template, s.reason) for s in later.suppressions] == [
        ("cart_reminder_1", "frequency_cap")  # the survivor's welcome went 4 hours before
    ]


def test_a_merge_keeps_runs_the_survivor_does_not_have() -> None:
    absorbed = on_event(CATALOG, CustomerState(), recipient(), cart(T0), T0).state
    decision = on_merge(CATALOG, CustomerState(), [absorbed], recipient(), T0 + hours(5))
    assert [s.template for s in decision.sends] == ["cart_reminder_1"]
    assert decision.state.entries == absorbed.entries


def test_a_disabled_journey_starts_nothing_and_ends_its_runs() -> None:
    state = on_event(CATALOG, CustomerState(), recipient(), cart(T0), T0).state
    journeys = dict(CATALOG.journeys)
    journeys["abandoned_cart"] = journeys["abandoned_cart"].model_copy(update={"enabled": False})
    disabled = Catalog(journeys)
    decision = on_due(disabled, state, recipient(), T0 + hours(5))
    assert decision.sends == ()
    assert decision.actions == (
        RunExited(
            customer_id="c-1",
            journey="abandoned_cart",
            run_key=cart(T0).event_id,
            trigger_event_id=cart(T0).event_id,
            reason="disabled",
            step=0,
            at=T0 + hours(5),
        ),
    )
    again = on_event(disabled, decision.state, recipient(), cart(T0 + hours(6)), T0 + hours(6))
    assert again.actions == ()


WAITS_FOR_POINTS = """\
version: 1
id: points_goal
name: Points goal
triggers: [{event: signed_up}]
re_entry: {policy: once}
steps:
  - wait_until:
      condition: {all: [{field: profile.loyalty.points_balance, op: gte, value: 100}]}
      timeout: 7d
      on_match: continue
      on_timeout: exit
  - send: {template: points_goal}
"""


def test_a_condition_wait_moves_when_the_profile_changes() -> None:
    catalog = load_catalog([("points_goal.yaml", WAITS_FOR_POINTS)])
    poor, rich = recipient(points=10), recipient(points=150)
    state = on_event(catalog, CustomerState(), poor, signed_up(T0), T0, NO_QUIET).state
    assert state.next_wake == T0 + days(7)
    assert on_due(catalog, state, poor, T0 + days(1), NO_QUIET).sends == ()
    decision = on_update(catalog, state, rich, T0 + days(1), NO_QUIET)
    assert [s.template for s in decision.sends] == ["points_goal"]
    timed_out = on_due(catalog, state, poor, T0 + days(7), NO_QUIET)
    assert [a.reason for a in timed_out.actions if isinstance(a, RunExited)] == ["timeout_exit"]


def test_a_journey_edit_that_removes_steps_completes_runs_past_the_end() -> None:
    state = on_event(CATALOG, CustomerState(), recipient(), cart(T0), T0).state
    state = on_due(CATALOG, state, recipient(), T0 + hours(5)).state  # on step 2 now
    short = CATALOG.journeys["abandoned_cart"].model_copy(
        update={"steps": CATALOG.journeys["abandoned_cart"].steps[:2]}
    )
    edited = Catalog({**CATALOG.journeys, "abandoned_cart": short})
    decision = on_due(edited, state, recipient(), T0 + hours(6))
    exits = [(a.journey, a.reason) for a in decision.actions if isinstance(a, RunExited)]
    assert exits == [("abandoned_cart", "completed")]
    assert len(decision.actions) == 1


# Inputs, outputs


def test_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        on_due(CATALOG, CustomerState(), recipient(), datetime(2026, 1, 1))
    other = cart(T0).model_copy(update={"customer_id": "c-2"})
    with pytest.raises(ValueError, match="not 'c-1'"):
        on_event(CATALOG, CustomerState(), recipient(), other, T0)


def test_a_bad_time_zone_falls_back_to_the_default() -> None:
    sim = Sim(
        recipient=recipient(timezone="Mars/Olympus"), policy=Policy(default_timezone="Asia/Tokyo")
    )
    sim.deliver(referral(T0), T0)  # 21:00 in Tokyo: quiet
    assert sim.sends() == []
    sim.run_until(T0 + days(1))
    assert [t for t, _ in sim.sent()] == [datetime(2026, 3, 10, 23, 0, tzinfo=UTC)]  # 08:00
    with pytest.raises(ValueError, match="unknown default time zone"):
        Policy(default_timezone="Mars/Olympus")


def test_actions_become_notifications_v1_records() -> None:
    sim = Sim(recipient=recipient(consent="unknown", consent_at=None))
    sim.deliver(order(T0), T0)
    sim.run_until(T0 + days(8))
    (_, send), *_ = sim.sends()
    (_, suppress), *_ = sim.suppressions()
    from pydantic import TypeAdapter

    adapter: TypeAdapter[NotificationEvent] = TypeAdapter(NotificationEvent)
    sent = adapter.validate_json(send.sent(T0, "<m-1@example.com>").model_dump_json())
    assert sent.type == "sent"
    assert sent.notification_id == send.notification_id
    assert sent.trigger_event_id == "order:o-1"
    assert sent.journey == "post_purchase"
    record = adapter.validate_json(suppress.record().model_dump_json())
    assert record.type == "suppressed"
    assert record.reason == "no_consent"
    assert record.template == "review_request"


def test_state_json_is_plain_json() -> None:
    sim = Sim()
    sim.deliver(consent(T0, "opted_in"), T0)
    sim.deliver(cart(T0), T0)
    sim.deliver(order(T0 + hours(1)), T0 + hours(1))
    raw = sim.state.to_json()
    assert json.loads(json.dumps(raw)) == raw
    assert CustomerState.from_json(raw) == sim.state
    with pytest.raises(ValueError, match="version"):
        CustomerState.from_json({**raw, "v": 99})


def test_memory_is_pruned_when_it_can_no_longer_matter() -> None:
    sim = Sim(policy=NO_QUIET)
    for n in range(10):
        at = T0 + hours(n * 5)
        sim.deliver(cart(at), at)
    sim.run_until(T0 + days(10))
    sim.deliver(referral(T0 + days(10)), T0 + days(10))
    state = sim.state
    assert [e.journey for e in state.entries] == ["referral_thank_you"]  # carts forgotten
    assert all(f.at >= T0 + days(3) for f in state.facts)
    assert all(T0 + days(10) - t < days(7) for t in state.marketing_sends)


def test_the_parsers_for_settings() -> None:
    from services.notify.domain import Cap, QuietHours, parse_caps, parse_quiet_hours

    assert parse_caps("1/16h, 3/7d") == (Cap(1, hours(16)), Cap(3, days(7)))
    assert parse_caps("none") == ()
    assert parse_quiet_hours("21:00-08:00") == Policy().quiet_hours
    assert parse_quiet_hours("off") is None
    assert parse_quiet_hours("08:00-08:00") is None
    assert isinstance(parse_quiet_hours("00:00-06:30"), QuietHours)
    with pytest.raises(ValueError, match="COUNT/DURATION"):
        parse_caps("three a week")
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        parse_quiet_hours("21:00")


def test_journeys_parse_from_text_for_tests() -> None:
    assert parse_journey(WAITS_FOR_POINTS, "points_goal.yaml").id == "points_goal"


def test_a_recipient_from_the_profile_and_scores_records() -> None:
    from schemas.topics.profiles_v1 import ProfileSnapshot
    from services.notify.domain import Recipient

    snapshot = ProfileSnapshot.model_validate(
        {
            "customer_id": "c-1",
            "revision": 3,
            "updated_at": "2026-03-01T00:00:00Z",
            "email": "ann@example.com",
            "timezone": "Europe/Paris",
            "consent": {
                "email_marketing": "opted_in",
                "email_marketing_changed_at": "2026-02-01T10:00:00",
            },
            "loyalty": {"points_balance": 700},
        }
    )
    person = Recipient.from_records("c-1", snapshot, {"recommendations": ["p-1"]})
    assert person.email == "ann@example.com"
    assert person.consent == "opted_in"
    assert person.consent_at == datetime(2026, 2, 1, 10, tzinfo=UTC)
    assert person.timezone == "Europe/Paris"
    assert person.profile["loyalty"]["points_balance"] == 700
    assert person.scores == {"recommendations": ["p-1"]}
    nobody = Recipient.from_records("c-2", None, suppressed="complaint")
    assert (nobody.email, nobody.consent, nobody.suppressed) == (None, "unknown", "complaint")


# The profile travels on profiles.v1, the trigger on lifecycle.v1


def test_a_send_waits_for_a_profile_not_yet_received_then_goes_once_it_is() -> None:
    sim = Sim(recipient=Recipient(customer_id=recipient().customer_id, known=False))
    sim.deliver(referral(T0), T0)  # sends at once, but notify has no profile of them yet
    assert sim.sends() == []
    assert sim.suppressions() == []
    sim.recipient = replace(recipient(), known=True)  # the profile arrives a moment later
    sim.run_until(T0 + timedelta(minutes=1))
    assert [s.template for _, s in sim.sends()] == ["referral_thank_you"]


def test_without_a_profile_for_ten_minutes_the_send_is_decided_without_it() -> None:
    sim = Sim(recipient=Recipient(customer_id=recipient().customer_id, known=False))
    sim.deliver(referral(T0), T0)
    sim.run_until(T0 + timedelta(minutes=11))
    assert sim.sends() == []
    assert _reasons(sim) == [("referral_thank_you", "no_email_address")]
