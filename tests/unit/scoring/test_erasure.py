"""The erasure rule: dated at or before the erasure is the erased customer's; the latest erasure
counts."""

from datetime import UTC, datetime, timedelta

from services.scoring.domain.erasure import before_erasure, erasure_times

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def test_at_or_before_the_erasure_is_the_erased_customers_after_it_is_not() -> None:
    assert before_erasure(T0 - SECOND, T0)
    assert before_erasure(T0, T0)
    assert not before_erasure(T0 + SECOND, T0)
    assert not before_erasure(T0, None)  # never erased


def test_the_latest_erasure_counts_whatever_the_order_it_is_told_in() -> None:
    later = T0 + timedelta(days=30)
    assert erasure_times({}, [("c1", T0)]) == {"c1": T0}
    assert erasure_times({"c1": T0}, [("c1", later)]) == {"c1": later}  # erased again
    assert erasure_times({"c1": later}, [("c1", T0)]) == {"c1": later}  # an old one again
    assert erasure_times({"c2": T0}, [("c1", later), ("c1", T0)]) == {"c1": later, "c2": T0}
