"""CPU per touchpoints.v1 value decoded: `Touchpoint.model_validate_json` against `from_json`.

    .venv/bin/python -m bench.profile.decode               # about 10 s on the 2-core machine
    .venv/bin/python -m bench.profile.decode --profile     # and cProfile of one pass of each

The values are the profile benchmark's own traffic (bench/profile/events.py: page views,
product views, cart adds, orders with products, identifies, as `run.py` produces them),
validated and stamped as ingest stamps them, serialised with `Touchpoint.to_json` as ingest
publishes them. Every value is first checked to decode to an equal Touchpoint both ways.

Each call is timed on its own (perf_counter_ns, less the timer's own cost) and the ways take
turns round by round, so a burst of load from the rest of the machine spreads over all of them;
the median per event is what the table reports, the mean beside it. Besides the two entry
points: `orjson.loads` (parsing the JSON only, the floor for any decode that validates), the
catalog's TypeAdapter, and each rewrite of the fast validator alone (what each is worth).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from bench.profile.events import generate, touchpoint
from schemas.catalog import PAYLOADS
from schemas.topics import TOUCHPOINTS
from schemas.topics._touchpoint_decode import fast_validator
from schemas.topics.touchpoints_v1 import Touchpoint

Decode = Callable[[bytes], Any]
ADAPTER = PAYLOADS[TOUCHPOINTS].adapter
BEFORE = "Touchpoint.model_validate_json (before)"
AFTER = "Touchpoint.from_json (after)"


def values(events: int, seed: int) -> tuple[list[bytes], list[str]]:
    """touchpoints.v1 values as ingest publishes them, and each one's kind."""
    traffic = generate(events, max(1, events // 10), seed=seed)
    rng = random.Random(seed)
    out: list[bytes] = []
    kinds: list[str] = []
    for raw in traffic.events:
        at = datetime.fromisoformat(raw["timestamp"])
        # Received a little after it happened, with microseconds, as datetime.now() gives.
        received_at = at + timedelta(microseconds=rng.randrange(50_000, 900_000))
        out.append(touchpoint(raw, received_at).to_json())
        kinds.append(raw["event"] if raw["type"] == "track" else raw["type"])
    return out, kinds


def _with_fallback(validate: Decode) -> Decode:
    # As from_json uses its validator; only for the single-rewrite rows.
    def decode(raw: bytes) -> Any:
        try:
            return validate(raw)
        except ValidationError:
            return Touchpoint.model_validate_json(raw)

    return decode


def ways() -> dict[str, Decode]:
    union_only, _ = fast_validator(Touchpoint, datetimes=False)
    datetimes_only, _ = fast_validator(Touchpoint, union=False)
    return {
        BEFORE: Touchpoint.model_validate_json,
        "PAYLOADS[touchpoints.v1].adapter.validate_json": ADAPTER.validate_json,
        "fast validator, union rewrite only": _with_fallback(union_only),
        "fast validator, datetime rewrite only": _with_fallback(datetimes_only),
        AFTER: Touchpoint.from_json,
        "orjson.loads (JSON parsing only, no models)": orjson.loads,
    }


def timer_cost() -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(20_000):
        start = clock()
        samples.append(clock() - start)
    return statistics.median(samples)


def measure(decoders: dict[str, Decode], raws: list[bytes], rounds: int) -> dict[str, list[float]]:
    """Nanoseconds per call, per way, in value order, round after round."""
    clock = time.perf_counter_ns
    overhead = timer_cost()
    out: dict[str, list[float]] = {name: [] for name in decoders}
    for _ in range(rounds):
        for name, decode in decoders.items():
            samples = out[name]
            for raw in raws:
                start = clock()
                decode(raw)
                samples.append(clock() - start - overhead)
    return out


def check_equal(raws: list[bytes]) -> None:
    for raw in raws:
        before = Touchpoint.model_validate_json(raw)
        after = Touchpoint.from_json(raw)
        if after != before or type(after.event) is not type(before.event):
            sys.exit(f"from_json differs from model_validate_json for {raw!r}")


def report(samples: dict[str, list[float]], kinds: list[str], raws: list[bytes]) -> str:
    names = list(samples)
    lines = [
        "| way | median µs/event | mean µs/event |",
        "|---|---|---|",
    ]
    for name in names:
        median, mean = (
            statistics.median(samples[name]) / 1000,
            statistics.fmean(samples[name]) / 1000,
        )
        lines.append(f"| {name} | {median:.1f} | {mean:.1f} |")
    lines += [
        "",
        "By kind (median µs/event):",
        "",
        "| kind | share | bytes | before | after | saved |",
        "|---|---|---|---|---|---|",
    ]
    by_kind: dict[str, list[int]] = {}
    for index, kind in enumerate(kinds):
        by_kind.setdefault(kind, []).append(index)
    n = len(raws)
    for kind, indexes in sorted(by_kind.items(), key=lambda item: -len(item[1])):
        b = statistics.median(_at(samples[BEFORE], indexes, n)) / 1000
        a = statistics.median(_at(samples[AFTER], indexes, n)) / 1000
        size = statistics.median(len(raws[i]) for i in indexes)
        share = len(indexes) / n
        lines.append(f"| {kind} | {share:.0%} | {size:.0f} | {b:.1f} | {a:.1f} | {1 - a / b:.0%} |")
    return "\n".join(lines)


def _at(samples: list[float], indexes: list[int], n: int) -> list[float]:
    rounds = len(samples) // n
    return [samples[r * n + i] for r in range(rounds) for i in indexes]


def profile(raws: list[bytes], decode: Decode, title: str) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for raw in raws:
        decode(raw)
    profiler.disable()
    print(f"\n{title}: cProfile of one pass over {len(raws)} values, by own time\n")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(10)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile.decode", description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="also print cProfile of each")
    args = parser.parse_args()

    raws, kinds = values(args.events, args.seed)
    check_equal(raws)
    decoders = ways()
    for decode in decoders.values():  # warm up: builds, caches, first-call costs
        for raw in raws[:200]:
            decode(raw)
    samples = measure(decoders, raws, args.rounds)
    print(
        f"{len(raws)} touchpoints.v1 values (median {statistics.median(map(len, raws)):.0f} "
        f"bytes), {args.rounds} rounds; all decode equal both ways\n"
    )
    print(report(samples, kinds, raws))
    if args.profile:
        profile(raws, Touchpoint.model_validate_json, "model_validate_json")
        profile(raws, Touchpoint.from_json, "from_json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
