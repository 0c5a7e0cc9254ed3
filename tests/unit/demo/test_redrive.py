"""Planning a dead-letter re-drive: each letter goes back once, cut letters never."""

from datetime import UTC, datetime

from schemas.topics.dlq_v1 import MAX_VALUE_BYTES, DeadLetter
from services.devstack.redrive import (
    Letter,
    RedriveRecord,
    headers,
    original_key,
    plan_redrive,
    status,
)

AT = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _letter(offset: int, value: bytes = b'{"x": 1}', key: bytes | None = b"k") -> Letter:
    dead = DeadLetter.of(
        topic="touchpoints.v1",
        partition=2,
        offset=100 + offset,
        key=key,
        value=value,
        error=ValueError("boom"),
        failed_at=AT,
        consumer_group="retain-profile",
    )
    return Letter(offset, dead)


def test_waiting_letters_go_back_in_order_and_the_commit_passes_them_all() -> None:
    letters = [_letter(2), _letter(0), _letter(1)]
    plan = plan_redrive(letters, redriven_below=0)
    assert [letter.offset for letter in plan.send] == [0, 1, 2]
    assert plan.commit_offset == 3


def test_letters_already_redriven_are_not_sent_again() -> None:
    letters = [_letter(n) for n in range(5)]
    plan = plan_redrive(letters, redriven_below=3)
    assert [letter.offset for letter in plan.send] == [3, 4]
    assert [status(letter, 3) for letter in letters] == ["re-driven"] * 3 + ["waiting"] * 2
    again = plan_redrive(letters, redriven_below=plan.commit_offset)
    assert again.send == []
    assert again.commit_offset == 5


def test_a_letter_whose_value_was_cut_is_left_and_said_so_but_does_not_block_the_rest() -> None:
    cut = _letter(1, value=b"x" * (MAX_VALUE_BYTES + 10))
    plan = plan_redrive([_letter(0), cut, _letter(2)], redriven_below=0)
    assert [letter.offset for letter in plan.send] == [0, 2]
    assert [(letter.offset, "cut" in why) for letter, why in plan.cannot] == [(1, True)]
    assert status(cut, 3) == "not re-drivable"


def test_the_original_key_and_value_come_back_byte_for_byte() -> None:
    binary = _letter(0, value=b"\xff\xfe raw", key=b"\x00\x01")
    assert binary.dead.original_value() == b"\xff\xfe raw"
    assert original_key(binary.dead) == b"\x00\x01"
    assert original_key(_letter(1, key=None).dead) is None


def test_the_record_of_who_and_when_survives_the_commit_metadata() -> None:
    record = RedriveRecord(by="ops@host", at=AT, sent=4)
    assert RedriveRecord.parse(record.metadata()) == record
    assert RedriveRecord.parse("") is None
    assert RedriveRecord.parse("not json") is None
    assert dict(headers("touchpoints.dlq.v1", _letter(7), record)) == {
        "retain-redriven-from": b"touchpoints.dlq.v1@7",
        "retain-redriven-by": b"ops@host",
        "retain-redriven-at": AT.isoformat().encode(),
    }
