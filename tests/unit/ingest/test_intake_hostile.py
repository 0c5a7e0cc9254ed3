"""Whatever a client sends, the intake answers with touchpoints and rejections, never an
exception, and every touchpoint it accepts is one a consumer decodes and PostgreSQL stores."""

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.topics.touchpoints_v1 import Touchpoint
from services.ingest.domain.intake import IntakeRules

RECEIVED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RULES = IntakeRules(max_event_bytes=32 * 1024, max_expanded_batch_bytes=2000 * 1024)

# Any text, NUL and lone surrogates excluded only where JSON itself cannot carry them.
texts = st.text(st.characters(codec="utf-8"), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
    | st.sampled_from(["\x00", "a\x00", "", "2026-11-22T10:00:00Z", "0001-01-01T00:00:00+04:00"])
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=12,
)


def _deep(levels: int, leaf: Any) -> Any:
    for _ in range(levels):
        leaf = {"a": leaf}
    return leaf


fields = st.sampled_from(
    [
        "type", "userId", "anonymousId", "messageId", "event", "properties", "traits",
        "context", "integrations", "timestamp", "originalTimestamp", "sentAt", "groupId",
        "previousId", "name", "x\x00", "writeKey",
    ]
)  # fmt: skip
events = st.dictionaries(fields, values | st.integers(60, 300).map(lambda n: _deep(n, 1)))
typed = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["track", "identify", "page", "alias", "group", "screen"]),
        "userId": st.sampled_from(["u1", "u\x00", 7]),
        "event": st.sampled_from(["Order Completed", "Signed Up", "Clicked", "a\x00"]),
    }
).flatmap(lambda base: events.map(lambda extra: {**base, **extra}))


def assert_storable(touchpoint: Touchpoint) -> None:
    value = touchpoint.to_json()
    assert b"\\u0000" not in value.replace(b"\\\\", b"")  # no NUL anywhere, escaped or not
    # Stored as to_json writes it (nulls left out): decoding gives back exactly that.
    assert Touchpoint.from_json(value).to_json() == value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(typed | events | values, max_size=4), st.none() | values)
def test_any_batch_is_answered_and_what_is_accepted_is_storable(items: list[Any], ctx: Any) -> None:
    body: dict[str, Any] = {"batch": items}
    if ctx is not None:
        body["context"] = ctx
    intake = RULES.take_batch(body, source_id="src_1", received_at=RECEIVED)
    assert len(intake.accepted) + len(intake.rejections) == len(items)
    assert len(intake.rejected_records) == len(intake.rejections)
    for touchpoint in intake.accepted:
        assert_storable(touchpoint)
    for record in intake.rejected_records:
        record.model_dump_json()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed)
def test_any_single_event_is_answered_and_what_is_accepted_is_storable(
    event: dict[str, Any],
) -> None:
    intake = RULES.take([event], event_type="track", source_id="src_1", received_at=RECEIVED)
    assert len(intake.accepted) + len(intake.rejections) == 1
    for touchpoint in intake.accepted:
        assert_storable(touchpoint)
