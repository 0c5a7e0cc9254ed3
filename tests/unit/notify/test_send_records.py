"""What the sender publishes about an email, from the engine's Send."""

from datetime import UTC, datetime

from services.notify.domain import Send

AT = datetime(2026, 12, 2, 10, tzinfo=UTC)


def send(kind: str) -> Send:
    return Send(
        notification_id="n-1",
        customer_id="cus_1",
        journey="post_purchase",
        step=0,
        template="order_thank_you",
        kind=kind,  # type: ignore[arg-type]
        trigger_event_id="e-1",
        to="ann@example.com",
        tracking=True,
        context={},
    )


def test_an_address_listed_after_the_decision_is_held_back_with_the_lists_reason() -> None:
    assert send("marketing").held_back("unsubscribed", AT).reason == "unsubscribed"
    held = send("marketing").held_back("hard_bounce", AT)
    assert (held.reason, held.detail, held.notification_id) == (
        "suppressed_address",
        "hard_bounce",
        "n-1",
    )


def test_a_bounce_keeps_a_valid_status_and_a_bounded_diagnostic() -> None:
    hard = send("marketing").bounced(hard=True, code=550, text="x" * 5000, at=AT)
    assert (hard.bounce_type, hard.smtp_status, len(hard.diagnostic or "")) == ("hard", 550, 1024)
    assert send("marketing").bounced(hard=False, code=None, text="reset", at=AT).smtp_status is None


def test_only_transactional_email_is_sent_again_when_uncertain() -> None:
    receipt = send("transactional").uncertain("<n-1@shop>", AT)
    offer = send("marketing").uncertain("<n-1@shop>", AT)
    assert (receipt.retried, offer.retried) == (True, False)
    assert receipt.smtp_message_id == "<n-1@shop>"
