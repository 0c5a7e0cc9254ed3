"""How the demo's ingest client cuts events into requests."""

import orjson

from services.demo.ingest_client import batches


def test_batches_hold_every_event_once_in_order_within_both_limits() -> None:
    events = [{"messageId": f"m-{n}", "pad": "x" * (n % 700)} for n in range(1234)]
    cut = list(batches(events, max_events=100, max_bytes=20_000))
    assert all(batch.events <= 100 and len(batch.body) <= 20_000 for batch in cut)
    sent = [event for batch in cut for event in orjson.loads(batch.body)]
    assert sent == events
    assert [batch.events for batch in cut] == [len(orjson.loads(b.body)) for b in cut]


def test_an_event_larger_than_the_byte_limit_goes_alone() -> None:
    big = {"messageId": "big", "pad": "x" * 5000}
    cut = list(batches([{"messageId": "a"}, big, {"messageId": "b"}], max_bytes=1000))
    assert [batch.events for batch in cut] == [1, 1, 1]
