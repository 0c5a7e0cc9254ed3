"""A paused journey: no one enters it, its runs wait where they are, and on resume they go on."""

from datetime import datetime, timedelta

from services.notify.domain import RunEntered
from tests.unit.notify.factory import CATALOG, T0, Sim, cart, hours

PAUSED = CATALOG.with_paused(frozenset({"abandoned_cart"}))


def _reminders(sim: Sim) -> list[tuple[datetime, str]]:
    return [(at, s.template) for at, s in sim.sends() if s.journey == "abandoned_cart"]


def test_no_one_enters_a_paused_journey_and_other_journeys_go_on() -> None:
    sim = Sim(catalog=PAUSED)
    decision = sim.deliver(cart(T0), T0 + timedelta(minutes=1))
    entered = [a.journey for a in decision.actions if isinstance(a, RunEntered)]
    assert "abandoned_cart" not in entered
    sim.catalog = CATALOG  # resumed: the trigger has passed, no run starts late
    sim.run_until(T0 + hours(30))
    assert _reminders(sim) == []


def test_a_run_waits_while_its_journey_is_paused_and_goes_on_once_resumed() -> None:
    sim = Sim()
    sim.deliver(cart(T0), T0 + timedelta(minutes=1))
    sim.run_until(T0 + hours(1))
    sim.catalog = PAUSED
    sim.run_until(T0 + hours(6))  # the 4h reminder falls due while paused
    assert _reminders(sim) == []
    assert [run.journey for run in sim.state.runs].count("abandoned_cart") == 1
    sim.catalog = CATALOG
    sim.run_until(T0 + hours(6) + timedelta(seconds=31))
    [(at, template)] = _reminders(sim)
    assert template == "cart_reminder_1"
    assert T0 + hours(6) <= at <= T0 + hours(6) + timedelta(seconds=31)


def test_pausing_again_with_the_same_journeys_keeps_the_catalog() -> None:
    assert PAUSED.with_paused(frozenset({"abandoned_cart"})) is PAUSED
    assert PAUSED.with_paused(frozenset()).paused == frozenset()
    assert CATALOG.journeys.keys() == PAUSED.journeys.keys()
