"""The pure core of the profile service: touchpoints folded into a mergeable profile state.

Nothing here performs I/O or imports a driver. The consumer, repository and read API wrap it:

- `fold(state, touchpoints)` adds events to a `ProfileState`; the result depends only on the
  set of events (any order, any duplicates, any split across calls);
- `merge(a, b)` combines two profiles found to be one customer;
- `ProfileState.to_json()` / `ProfileState.from_json()` store a state as JSON;
- `to_snapshot(state, ...)` is the profiles.v1 payload, and
  `with_cross_customer_figures(snapshot, ...)` adds to one what spans customers (merged ids,
  referrals made);
- `lifecycle_signals(before, after, ...)` are the lifecycle.v1 events a fold implies.
"""

from services.profile.domain.fold import fold
from services.profile.domain.signals import SIGNAL_MAX_AGE, lifecycle_signals
from services.profile.domain.snapshot import (
    LoyaltyRule,
    to_snapshot,
    with_cross_customer_figures,
)
from services.profile.domain.state import ProfileState, merge

__all__ = [
    "SIGNAL_MAX_AGE",
    "LoyaltyRule",
    "ProfileState",
    "fold",
    "lifecycle_signals",
    "merge",
    "to_snapshot",
    "with_cross_customer_figures",
]
