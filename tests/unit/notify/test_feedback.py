"""Opens, clicks and unsubscribes become touchpoints the profile service folds."""

from datetime import UTC, datetime

from schemas.topics import TOUCHPOINTS
from schemas.topics.touchpoints_v1 import Touchpoint
from services.notify.feedback import feedback_touchpoint

AT = datetime(2026, 12, 2, 10, tzinfo=UTC)
NID = "0b6f1c2e-4d0a-5d6b-9b7e-2f1a3c4d5e6f"


def test_an_open_is_a_touchpoint_of_the_customer_by_their_user_id() -> None:
    message = feedback_touchpoint(
        "Email Opened", NID, {"user_id": "ann", "anonymous_ids": ["a"]}, AT, {}
    )
    assert message is not None
    assert (message.topic, message.key) == (TOUCHPOINTS, b"ann")
    assert message.value is not None
    touchpoint = Touchpoint.from_json(message.value)
    assert touchpoint.customer_key == "ann"
    assert touchpoint.event.event == "Email Opened"  # type: ignore[union-attr]
    assert touchpoint.event.properties.email_id == NID  # type: ignore[union-attr]
    assert touchpoint.timestamp == AT


def test_the_same_click_counts_once_and_another_link_again() -> None:
    profile = {"anonymous_ids": ["anon-1"]}
    first = feedback_touchpoint("Email Link Clicked", NID, profile, AT, {"link_url": "https://a/1"})
    again = feedback_touchpoint("Email Link Clicked", NID, profile, AT, {"link_url": "https://a/1"})
    other = feedback_touchpoint("Email Link Clicked", NID, profile, AT, {"link_url": "https://a/2"})
    messages = [m for m in (first, again, other) if m is not None]
    ids = [Touchpoint.from_json(m.value or b"").message_id for m in messages]
    assert len(ids) == 3
    assert ids[0] == ids[1] != ids[2]
    assert messages[0].key == b"anon-1"


def test_no_identity_no_touchpoint() -> None:
    assert feedback_touchpoint("Unsubscribed", NID, None, AT, {}) is None
    assert feedback_touchpoint("Unsubscribed", NID, {"email": "x@y.z"}, AT, {}) is None
