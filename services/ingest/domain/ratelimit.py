"""Per-source rate limiting with token buckets; `now` is passed in, so it is testable."""

from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Each source may send `rate` events per second on average and `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, source_id: str, events: int, now: float) -> float:
        """Take `events` tokens; 0.0 if allowed, else the seconds to wait before retrying."""
        bucket = self._buckets.get(source_id)
        if bucket is None:
            bucket = self._buckets[source_id] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        # A request larger than the burst passes on a full bucket and leaves it in debt, so it
        # is possible at all and the average rate still holds.
        needed = min(float(events), self._burst)
        if needed <= bucket.tokens:
            bucket.tokens -= events
            return 0.0
        return (needed - bucket.tokens) / self._rate
