"""Erasure in scoring: what a customer did up to their erasure is forgotten and stays forgotten;
what happens after it is a customer who came back, scored like anyone else.

The profile service erases a customer once and says so on both topics scoring reads: a
profiles.v1 tombstone, and customer_erased on lifecycle.v1 whose `occurred_at` is the time the
profile service keeps in its own erasure ledger (`profile.erasures.erased_at`). Scoring keeps
that time per customer (`scoring.erasures`; erased again, the later time counts) because the two
topics are consumed apart: an order or a snapshot of the erased customer can reach scoring after
it has forgotten them. The rule, the same as the profile service's:

- an order (order_completed `occurred_at`) or a profile snapshot (`updated_at`) dated at or
  before the customer's erasure is the erased customer's: dropped when it arrives late, forgotten
  when customer_erased comes;
- anything dated after it is the customer coming back: a new profile, new orders, new scores.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime


def erasure_times(
    recorded: Mapping[str, datetime], announced: Iterable[tuple[str, datetime]]
) -> dict[str, datetime]:
    """Each customer's erasure time once the announced erasures (customer id, when) are added:
    the latest counts, so an old announcement delivered again moves nothing back."""
    times = dict(recorded)
    for customer_id, erased_at in announced:
        times[customer_id] = max(erased_at, times.get(customer_id, erased_at))
    return times


def before_erasure(at: datetime, erased_at: datetime | None) -> bool:
    """Whether what is dated `at` belongs to the erased customer: at or before their erasure."""
    return erased_at is not None and at <= erased_at
