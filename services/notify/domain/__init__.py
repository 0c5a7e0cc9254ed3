"""The pure core of the notify service: journeys as data, and the engine that runs them.

Nothing here performs I/O or imports a driver (reading the journey directory is
`services.notify.journeys.load`). The shell (consumers, wake-up table, SMTP sender) wraps it:

- `parse_journey(text, source)` / `load_catalog(files)` -> `Catalog` of validated journeys;
- `on_event(catalog, state, recipient, event, now, policy)`, `on_due(...)`, `on_update(...)`,
  `on_merge(...)` -> `Decision(state, actions)`; `Decision.next_wake` is the next wake-up;
- `CustomerState.to_json()` / `CustomerState.from_json()` store a customer's state as JSON;
- `Recipient.from_records(customer_id, profile, scores, suppressed=..., erased=...)` is the
  customer as a call sees them; `Policy` holds caps, quiet hours and the default zone
  (`parse_caps`, `parse_quiet_hours` read their settings);
- actions: `Send` (`.sent(...)` is its notifications.v1 record), `Suppress` (`.record()`),
  `RunEntered`, `RunExited`.
"""

from services.notify.domain.actions import (
    Action,
    Decision,
    ExitReason,
    RunEntered,
    RunExited,
    Send,
    Suppress,
    notification_id,
)
from services.notify.domain.catalog import (
    Catalog,
    CatalogError,
    JourneyError,
    load_catalog,
    parse_journey,
)
from services.notify.domain.engine import on_due, on_event, on_merge, on_update
from services.notify.domain.policy import (
    Cap,
    Policy,
    QuietHours,
    parse_caps,
    parse_quiet_hours,
)
from services.notify.domain.recipient import Recipient
from services.notify.domain.state import CustomerState, Entry, Fact, Run

__all__ = [
    "Action",
    "Cap",
    "Catalog",
    "CatalogError",
    "CustomerState",
    "Decision",
    "Entry",
    "ExitReason",
    "Fact",
    "JourneyError",
    "Policy",
    "QuietHours",
    "Recipient",
    "Run",
    "RunEntered",
    "RunExited",
    "Send",
    "Suppress",
    "load_catalog",
    "notification_id",
    "on_due",
    "on_event",
    "on_merge",
    "on_update",
    "parse_caps",
    "parse_journey",
    "parse_quiet_hours",
]
