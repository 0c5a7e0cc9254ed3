from services.ingest.domain.ratelimit import RateLimiter


def test_a_source_may_burst_then_waits_for_tokens() -> None:
    limiter = RateLimiter(rate=10, burst=20)
    assert limiter.acquire("shop", 20, now=0.0) == 0.0
    assert limiter.acquire("shop", 5, now=0.0) == 0.5  # 5 tokens at 10/s
    assert limiter.acquire("shop", 5, now=0.5) == 0.0


def test_sources_have_separate_buckets() -> None:
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.acquire("a", 1, now=0.0) == 0.0
    assert limiter.acquire("b", 1, now=0.0) == 0.0
    assert limiter.acquire("a", 1, now=0.0) > 0


def test_a_refused_request_takes_no_tokens() -> None:
    limiter = RateLimiter(rate=10, burst=10)
    assert limiter.acquire("shop", 8, now=0.0) == 0.0
    assert limiter.acquire("shop", 5, now=0.0) > 0
    assert limiter.acquire("shop", 2, now=0.0) == 0.0


def test_a_request_larger_than_the_burst_passes_on_a_full_bucket_and_leaves_a_debt() -> None:
    limiter = RateLimiter(rate=10, burst=10)
    assert limiter.acquire("shop", 50, now=0.0) == 0.0
    # 40 tokens of debt plus a full bucket of 10: five seconds at 10/s.
    assert limiter.acquire("shop", 50, now=0.0) == 5.0
    assert limiter.acquire("shop", 1, now=3.0) > 0  # still paying the debt back
    assert limiter.acquire("shop", 1, now=4.5) == 0.0
