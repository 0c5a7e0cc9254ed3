"""When the next scheduled refit runs: every interval, or once a day at a fixed UTC time (a
quiet hour, so the nightly fit and the rescore of everyone do not meet the day's traffic)."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta


@dataclass(frozen=True)
class RefitSchedule:
    every: timedelta = timedelta(days=1)
    at: time | None = None  # UTC; when set, daily at this time and `every` is not used

    def next_after(self, now: datetime) -> datetime:
        if self.at is None:
            return now + self.every
        today = datetime.combine(now.astimezone(UTC).date(), self.at, tzinfo=UTC)
        return today if today > now else today + timedelta(days=1)
