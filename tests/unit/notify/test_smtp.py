"""What the sender worker does after a temporary failure: wait `backoff(attempt)`."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notify.smtp import BACKOFF_CAP, MAX_ATTEMPTS, backoff


def test_backoff_doubles_from_a_minute_up_to_two_hours() -> None:
    top = [backoff(attempt, jitter=lambda: 1.0) for attempt in range(1, 12)]
    assert top[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert top[-1] == BACKOFF_CAP == timedelta(hours=2)
    assert top == sorted(top)


def test_jitter_spreads_retries_between_half_and_all_of_the_delay() -> None:
    assert backoff(3, jitter=lambda: 0.0) == timedelta(minutes=2)
    assert backoff(3, jitter=lambda: 0.5) == timedelta(minutes=3)


@given(st.integers(1, 10_000), st.floats(0, 1))
def test_backoff_is_bounded(attempt: int, jitter: float) -> None:
    delay = backoff(attempt, jitter=lambda: jitter)
    assert timedelta(seconds=30) <= delay <= BACKOFF_CAP


def test_the_suggested_attempts_span_about_half_a_day() -> None:
    total = sum((backoff(a, jitter=lambda: 1.0) for a in range(1, MAX_ATTEMPTS)), timedelta())
    assert timedelta(hours=10) < total < timedelta(hours=14)


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff(0)
