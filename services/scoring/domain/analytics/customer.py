"""The dashboard's Customer page, pure: what a search asks the profile service, one customer's
ladder step and stage history as step-chart points, and their timeline of touchpoints and
emails interleaved by time."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from schemas.topics.scores_v1 import LadderStep, LifecycleStage
from services.scoring.domain.standing import LADDER
from services.scoring.domain.transitions import HistoryDimension, Transition

STAGES: tuple[LifecycleStage, ...] = (
    "selection",
    "acquisition",
    "retention",
    "expansion",
    "lapsed",
)
# The dimensions the page charts, each with its segments in the order the chart's axis shows.
CHARTED: dict[HistoryDimension, tuple[LadderStep, ...] | tuple[LifecycleStage, ...]] = {
    "ladder_step": LADDER,
    "lifecycle_stage": STAGES,
}


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What the search box's text asks the profile service (GET /v1/customers)."""

    field: Literal["email", "user_id"]
    value: str


def classify(text: str) -> SearchQuery | None:
    """An address (it has an @ between other characters) is looked up by email, lowercased as
    the profile stores it; anything else is a user id, as typed. None for blank text."""
    value = text.strip()
    if not value:
        return None
    local, at, domain = value.rpartition("@")
    if at and local and domain:
        return SearchQuery("email", value.lower())
    return SearchQuery("user_id", value)


@dataclass(frozen=True, slots=True)
class HistoryLine:
    """One dimension's history as a step chart: (time, segment) points, the first the segment
    the customer entered it with, the last the current segment at `now`."""

    dimension: HistoryDimension
    segments: tuple[str, ...]  # the axis, in rank order
    points: list[tuple[datetime, str]]


def history_lines(
    transitions: Iterable[Transition], current: dict[str, str | None], now: datetime
) -> list[HistoryLine]:
    """Each charted dimension's line from the kept transitions (any order), extended to `now`
    at the current segment (`current`, from the scores record) so the last step has a width.
    A dimension with neither transitions nor a current segment has no points."""
    ordered = sorted(transitions, key=lambda t: (t.at, t.event_id))
    lines = []
    for dimension, segments in CHARTED.items():
        points = [(t.at, t.to_segment) for t in ordered if t.dimension == dimension]
        latest = current.get(dimension)
        if latest is not None and (not points or points[-1][0] < now):
            points.append((now, latest))
        lines.append(HistoryLine(dimension, tuple(segments), points))
    return lines


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: str  # ISO 8601, as the service gave it
    kind: Literal["touchpoint", "email"]
    title: str
    detail: str


def touchpoint_entry(touchpoint: dict[str, Any]) -> TimelineEntry:
    """A touchpoint as the profile keeps it (ingest's envelope: `timestamp`, and the Segment
    event under `event`) as a line of the timeline."""
    event = touchpoint.get("event") or {}
    kind = str(event.get("type", "event"))
    if kind == "track":
        title = str(event.get("event", "track"))
    elif kind in ("page", "screen"):
        title = f"{kind}: {event.get('name') or _url(event) or '(unnamed)'}"
    else:
        title = kind
    properties = event.get("properties") or {}
    detail = ""
    if "revenue" in properties:
        detail = f"{properties['revenue']} {properties.get('currency') or ''}".strip()
    elif "order_id" in properties:
        detail = str(properties["order_id"])
    elif kind == "identify":
        traits = event.get("traits") or {}
        detail = str(traits.get("email") or "")
    return TimelineEntry(str(touchpoint.get("timestamp") or ""), "touchpoint", title, detail)


def email_entry(notification: dict[str, Any]) -> TimelineEntry:
    """A notification (notify's record of an email) as a line of the timeline."""
    status = str(notification.get("status", ""))
    reason = notification.get("reason")
    return TimelineEntry(
        str(notification.get("created_at") or ""),
        "email",
        f"email {notification.get('template', '')} ({notification.get('journey', '')})",
        f"{status}: {reason}" if reason else status,
    )


def merged_timeline(
    touchpoints: Sequence[dict[str, Any]], emails: Sequence[dict[str, Any]], limit: int
) -> list[TimelineEntry]:
    """Touchpoints and emails in one list, newest first, at most `limit` entries."""
    entries = [touchpoint_entry(t) for t in touchpoints] + [email_entry(e) for e in emails]
    entries.sort(key=lambda e: _instant(e.at), reverse=True)
    return entries[:limit]


def _instant(at: str) -> datetime:
    """Times from two services, in ISO 8601 with an offset, Z or none (UTC): compared as
    instants; one that is not a time sorts as the oldest."""
    try:
        parsed = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _url(event: dict[str, Any]) -> str:
    properties = event.get("properties") or {}
    return str(properties.get("path") or properties.get("url") or "")
