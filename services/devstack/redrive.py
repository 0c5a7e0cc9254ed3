"""Re-driving dead letters, planned without Kafka: which letters go back, and the record kept.

A dead-letter topic has one partition. What has been re-driven is a committed offset of the
consumer group `retain-dlq-redrive` on it: letters below it went back already, so a letter goes
back once however often `retain dlq redrive` runs. The commit carries the record of the last
re-drive (who, when, how many) in its metadata, and each re-driven record carries headers
naming the dead letter and who sent it back.
"""

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas.topics.dlq_v1 import DeadLetter

REDRIVE_GROUP = "retain-dlq-redrive"


@dataclass(frozen=True)
class Letter:
    offset: int
    dead: DeadLetter


@dataclass(frozen=True)
class RedriveRecord:
    """The last re-drive: by whom, when, and how many letters it sent back."""

    by: str
    at: datetime
    sent: int

    def metadata(self) -> str:
        return json.dumps({"by": self.by, "at": self.at.isoformat(), "sent": self.sent})

    @classmethod
    def parse(cls, metadata: str | None) -> "RedriveRecord | None":
        try:
            data = json.loads(metadata or "")
            return cls(data["by"], datetime.fromisoformat(data["at"]), int(data["sent"]))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class Plan:
    send: list[Letter]
    cannot: list[tuple[Letter, str]]  # letters that can never go back, and why
    commit_offset: int  # every letter below it is done once the plan is carried out


def status(letter: Letter, redriven_below: int) -> str:
    if letter.offset < redriven_below:
        return "re-driven" if not _why_not(letter) else "not re-drivable"
    return "waiting"


def plan_redrive(letters: Sequence[Letter], redriven_below: int) -> Plan:
    """The waiting letters to send back, in order; letters whose value was cut are left (their
    original cannot be rebuilt) and said so."""
    send: list[Letter] = []
    cannot: list[tuple[Letter, str]] = []
    for letter in sorted(letters, key=lambda letter: letter.offset):
        if letter.offset < redriven_below:
            continue
        why = _why_not(letter)
        if why:
            cannot.append((letter, why))
        else:
            send.append(letter)
    last = max((letter.offset for letter in letters), default=redriven_below - 1)
    return Plan(send, cannot, max(redriven_below, last + 1))


def original_key(dead: DeadLetter) -> bytes | None:
    if dead.key is None:
        return None
    if dead.key_encoding == "base64":
        return base64.b64decode(dead.key)
    return dead.key.encode()


def headers(
    dead_letter_topic: str, letter: Letter, record: RedriveRecord
) -> list[tuple[str, bytes]]:
    """What a re-driven record says about where it has been."""
    return [
        ("retain-redriven-from", f"{dead_letter_topic}@{letter.offset}".encode()),
        ("retain-redriven-by", record.by.encode()),
        ("retain-redriven-at", record.at.isoformat().encode()),
    ]


def _why_not(letter: Letter) -> str | None:
    if letter.dead.value_truncated:
        return f"its value was cut to fit the dead letter ({letter.dead.value_size:,} bytes)"
    return None
