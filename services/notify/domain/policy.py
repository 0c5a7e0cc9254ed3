"""The sending policy (caps, quiet hours, time zones) and the clock arithmetic it needs.

Local times are computed with zoneinfo, so daylight-saving changes are handled: a wall time
that does not exist that day (skipped by a spring-forward) falls just after the gap, a wall time
that happens twice (autumn) is its first occurrence.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.journey_v1 import format_duration, parse_duration, parse_local_time


@dataclass(frozen=True, slots=True)
class Cap:
    """At most `count` marketing emails in any `window`."""

    count: int
    window: timedelta

    def __str__(self) -> str:
        return f"{self.count}/{format_duration(self.window)}"


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No marketing email from `start` to `end`, wall clock in the customer's zone (it may span
    midnight: 21:00-08:00). start == end means no quiet hours."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True, slots=True)
class Policy:
    """Defaults as the issue sets them; the shell builds one from its settings with
    `parse_caps` and `parse_quiet_hours` (RETAIN_NOTIFY_* in docs/journeys.md)."""

    caps: tuple[Cap, ...] = (Cap(1, timedelta(hours=16)), Cap(3, timedelta(days=7)))
    quiet_hours: QuietHours | None = QuietHours(time(21, 0), time(8, 0))
    default_timezone: str = "UTC"
    fact_retention: timedelta = timedelta(days=7)
    """How long lifecycle facts (orders, cart changes...) are kept, by event time. Exits are
    applied to the runs in flight when they arrive; a kept fact serves a trigger that arrives
    after it, so the engine keeps facts at least as long as the longest max_trigger_age."""
    max_facts_per_type: int = 50
    profile_wait: timedelta = timedelta(minutes=10)
    """How long a send waits for a customer's first profile to reach notify (it travels on
    profiles.v1, the trigger on lifecycle.v1) before deciding without it."""

    def __post_init__(self) -> None:
        if _zone(self.default_timezone) is None:  # a configuration error: raise now
            raise ValueError(f"unknown default time zone {self.default_timezone!r}")
        for cap in self.caps:
            if cap.count < 1:
                raise ValueError(f"a cap allows at least one email: {cap}")
        if self.max_facts_per_type < 1:
            raise ValueError("max_facts_per_type must be at least 1")

    @property
    def cap_horizon(self) -> timedelta:
        return max((cap.window for cap in self.caps), default=timedelta(0))


_CAP = re.compile(r"^\s*([0-9]+)\s*/\s*(\S+)\s*$")


def parse_caps(text: str) -> tuple[Cap, ...]:
    """ "1/16h,3/7d" -> two caps; "" or "none" -> no cap."""
    if text.strip().lower() in ("", "none", "off"):
        return ()
    caps: list[Cap] = []
    for part in text.split(","):
        match = _CAP.match(part)
        if match is None:
            raise ValueError(f'a cap is "COUNT/DURATION" such as "3/7d"; got {part!r}')
        caps.append(Cap(int(match.group(1)), parse_duration(match.group(2))))
    return tuple(caps)


def parse_quiet_hours(text: str) -> QuietHours | None:
    """ "21:00-08:00" -> quiet hours; "" or "none" -> none."""
    if text.strip().lower() in ("", "none", "off"):
        return None
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f'quiet hours are "HH:MM-HH:MM" such as "21:00-08:00"; got {text!r}')
    quiet = QuietHours(parse_local_time(start.strip()), parse_local_time(end.strip()))
    return None if quiet.start == quiet.end else quiet


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def zone(name: str | None, default: str | None) -> ZoneInfo:
    """The customer's zone; an unknown or missing name falls back to the default. A bad
    default raises ValueError (configuration)."""
    found = _zone(name) if name else None
    if found is not None:
        return found
    if default is None:
        if name is None:
            raise ValueError("a time zone is required")
        raise ValueError(f"unknown time zone {name!r}")
    fallback = _zone(default)
    if fallback is None:
        raise ValueError(f"unknown default time zone {default!r}")
    return fallback


def _at_wall(day: datetime, wall: time, tz: ZoneInfo) -> datetime:
    """`wall` on the local date of `day`, as a UTC instant (after the gap if skipped)."""
    local = datetime.combine(day.date(), wall).replace(tzinfo=tz)
    return local.astimezone(UTC)


def next_wall_time(instant: datetime, wall: time, tz: ZoneInfo) -> datetime:
    """The first instant at or after `instant` whose local time in `tz` is `wall` (or just after
    it, on a day the clocks skip it)."""
    local = instant.astimezone(tz)
    for days in range(3):
        candidate = _at_wall(local + timedelta(days=days), wall, tz)
        if candidate >= instant:
            return candidate
    raise AssertionError("unreachable: a wall time recurs within two days")  # pragma: no cover


def in_quiet_hours(instant: datetime, tz: ZoneInfo, quiet: QuietHours | None) -> bool:
    if quiet is None or quiet.start == quiet.end:
        return False
    wall = instant.astimezone(tz).time()
    if quiet.start < quiet.end:
        return quiet.start <= wall < quiet.end
    return wall >= quiet.start or wall < quiet.end


def quiet_until(instant: datetime, tz: ZoneInfo, quiet: QuietHours | None) -> datetime | None:
    """None when marketing may go at `instant`; else the next moment it may (quiet hours end)."""
    if quiet is None or not in_quiet_hours(instant, tz, quiet):
        return None
    return next_wall_time(instant, quiet.end, tz)


def cap_exceeded(
    sends: tuple[datetime, ...] | list[datetime], now: datetime, caps: tuple[Cap, ...]
) -> Cap | None:
    """The first cap one more marketing email at `now` would break, given earlier sends.

    Windows are counted on both sides of `now`, so a clock that steps back (another replica)
    cannot squeeze a send in between two recorded ones: any two sends closer than a window
    count together.
    """
    for cap in caps:
        if sum(1 for sent in sends if abs(now - sent) < cap.window) >= cap.count:
            return cap
    return None
