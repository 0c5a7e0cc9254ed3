"""The write-key cache: valid and unknown keys remembered apart, each bounded."""

import asyncio
import secrets

from services.ingest.domain.keys import Source
from services.ingest.keys import MAX_WRITE_KEY_LENGTH, UNKNOWN_LOOKUPS_AT_ONCE, CachedKeyLookup

SHOP = Source("src_1", "shop")


class Repository:
    def __init__(self, valid: dict[str, Source]) -> None:
        self.valid = valid
        self.lookups: list[str] = []
        self.at_once = 0
        self.most_at_once = 0
        self.delay = 0.0

    async def source_for(self, key: str) -> Source | None:
        self.lookups.append(key)
        self.at_once += 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            await asyncio.sleep(self.delay)
            return self.valid.get(key)
        finally:
            self.at_once -= 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_spray_of_random_keys_neither_evicts_valid_keys_nor_queries_for_them() -> None:
    repository = Repository({"wk_valid": SHOP})
    keys = CachedKeyLookup(repository, 5.0, max_valid=10, max_unknown=100, clock=Clock())
    assert await keys.source_for("wk_valid") == SHOP
    for _ in range(1000):
        assert await keys.source_for("wk_" + secrets.token_urlsafe(24)) is None
    repository.lookups.clear()
    for _ in range(100):
        assert await keys.source_for("wk_valid") == SHOP
    assert repository.lookups == []  # still answered from memory
    assert len(keys._unknown) == 100  # bounded: the oldest random keys went first


async def test_unknown_keys_are_remembered_for_the_ttl_then_asked_again() -> None:
    repository = Repository({})
    clock = Clock()
    keys = CachedKeyLookup(repository, 5.0, clock=clock)
    for _ in range(3):
        assert await keys.source_for("wk_nope") is None
    assert repository.lookups == ["wk_nope"]
    # Created after it was tried: accepted once the ttl has passed.
    repository.valid["wk_nope"] = SHOP
    clock.now += 5.0
    assert await keys.source_for("wk_nope") == SHOP
    assert repository.lookups == ["wk_nope", "wk_nope"]


async def test_a_revoked_key_is_refused_within_the_ttl() -> None:
    repository = Repository({"wk_valid": SHOP})
    clock = Clock()
    keys = CachedKeyLookup(repository, 5.0, clock=clock)
    assert await keys.source_for("wk_valid") == SHOP
    del repository.valid["wk_valid"]
    clock.now += 4.9
    assert await keys.source_for("wk_valid") == SHOP
    clock.now += 0.1
    assert await keys.source_for("wk_valid") is None
    assert "wk_valid" not in keys._valid


async def test_the_valid_cache_is_bounded_too() -> None:
    repository = Repository({f"wk_{i}": Source(f"src_{i}", f"shop-{i}") for i in range(20)})
    keys = CachedKeyLookup(repository, 5.0, max_valid=5, clock=Clock())
    for i in range(20):
        await keys.source_for(f"wk_{i}")
    assert list(keys._valid) == [f"wk_{i}" for i in range(15, 20)]


async def test_a_key_longer_than_any_write_key_is_refused_without_a_lookup() -> None:
    repository = Repository({})
    keys = CachedKeyLookup(repository, 5.0, clock=Clock())
    assert await keys.source_for("k" * (MAX_WRITE_KEY_LENGTH + 1)) is None
    assert repository.lookups == []
    assert not keys._unknown


async def test_unknown_keys_queue_for_few_lookups_and_valid_refreshes_skip_the_queue() -> None:
    repository = Repository({"wk_valid": SHOP})
    clock = Clock()
    keys = CachedKeyLookup(repository, 5.0, clock=clock)
    assert await keys.source_for("wk_valid") == SHOP
    clock.now += 10  # the valid entry is stale: its refresh must not queue behind the spray
    repository.delay = 0.05
    spray = [asyncio.create_task(keys.source_for(f"wk_random_{i}")) for i in range(40)]
    await asyncio.sleep(0.01)
    started = asyncio.get_running_loop().time()
    assert await keys.source_for("wk_valid") == SHOP
    assert asyncio.get_running_loop().time() - started < 0.2  # not 40 / 4 * 0.05 s
    await asyncio.gather(*spray)
    assert repository.most_at_once <= UNKNOWN_LOOKUPS_AT_ONCE + 1


async def test_concurrent_requests_for_one_key_share_one_lookup() -> None:
    repository = Repository({"wk_valid": SHOP})
    repository.delay = 0.02
    keys = CachedKeyLookup(repository, 5.0, clock=Clock())
    answers = await asyncio.gather(*(keys.source_for("wk_valid") for _ in range(20)))
    assert answers == [SHOP] * 20
    assert repository.lookups == ["wk_valid"]
