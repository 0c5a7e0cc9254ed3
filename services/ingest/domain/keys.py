"""Write keys: generated with enough entropy that a fast hash is a safe way to store them.

Only the SHA-256 of a key is stored; the key itself is shown once, when it is created.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

KEY_PREFIX = "wk_"


def new_write_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def hash_write_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Source:
    """A storefront (or any sender) that owns write keys."""

    id: str
    name: str


@dataclass(frozen=True)
class WriteKeyInfo:
    key_hash: str
    key_hint: str  # the first characters, so people can tell keys apart in listings
    source: Source
    created_at: datetime
    revoked_at: datetime | None


def key_hint(key: str) -> str:
    return key[: len(KEY_PREFIX) + 4] + "…"
