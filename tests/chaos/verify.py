"""The exact count at the end of a scenario: what the pipeline did against what the load
generator knows it sent, recomputed from scratch with the services' own pure cores.

For every customer the scenario's events touched:

- every acknowledged event is on touchpoints.v1 (else it was lost);
- orders, revenue and page views in the customer's stored profile equal the generator's
  ledger (fewer: lost; more: doubled), and the stored profile state equals the profile core's
  fold of the customer's events as they are on the topic (else wrong);
- the latest profiles.v1 record is the stored profile's snapshot, and scoring holds that same
  snapshot; the customer's latest scores.v1 record equals the scoring core's score of it with
  scoring's ledger of orders (which must hold exactly the customer's orders) and the current
  model (else wrong; no record at all: lost);
- every email notify decided is in Mailpit as often as the notify design says (sent: once;
  uncertain: transactional once or twice, marketing at most once; never one that is
  suppressed, pending or still sending), every email in Mailpit is one notify decided, none
  went to a shopper without marketing consent (marketing email) or to a suppressed address,
  and every live order of a shopper with an email got its thank-you.

Across the run: no consumer group has lag, and each dead-letter topic holds exactly the
poison records produced on its input topic, once for each group that reads it.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.topics.dlq_v1 import DeadLetter
from schemas.topics.scores_v1 import CustomerScores
from schemas.topics.specs import PROFILES, SCORES, TOUCHPOINTS
from schemas.topics.touchpoints_v1 import Touchpoint
from services.profile.domain import ProfileState, fold
from services.profile.domain.identity import customer_id_for
from services.runtime.settings import Environment, ServiceSettings
from services.scoring.domain.score import score_customer
from services.scoring.settings import ScoringSettings
from services.scoring.store import PostgresScoringStore
from tests.chaos.stack import INPUTS, POISON_KEY_PREFIX


@dataclass
class Tally:
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    problems: list[str] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)  # what was compared, by kind

    def note(self, kind: str, count: int, what: str) -> None:
        if count:
            setattr(self, kind, getattr(self, kind) + count)
            if len(self.problems) < 40:
                self.problems.append(f"{kind} {count}: {what}")

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong)


# ---------------------------------------------------------------------- reading the topics


def latest_by_key(records: Iterable[Any]) -> dict[str, bytes | None]:
    """The last value of each key (a compacted topic's view of it)."""
    latest: dict[str, tuple[int, bytes | None]] = {}
    for r in records:
        key = r.key.decode()
        if key not in latest or r.offset > latest[key][0]:
            latest[key] = (r.offset, r.value)
    return {key: value for key, (_, value) in latest.items()}


class KafkaView:
    """The topics as the harness reads them, and each group's lag. One admin client and one
    consumer (in no group) for the whole run; they reconnect by themselves after a broker
    restart."""

    def __init__(self, settings: ServiceSettings) -> None:
        servers = settings.kafka_bootstrap_servers
        self._admin = AIOKafkaAdminClient(bootstrap_servers=servers)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)

    async def start(self) -> None:
        await self._admin.start()
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def read(self, topic: str) -> list[Any]:
        """Every record on `topic` up to its end offsets now, each partition in order."""
        partitions = [TopicPartition(topic, p) for p in await self._partitions(topic)]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        ends = await self._consumer.end_offsets(partitions)
        records: list[Any] = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await self._consumer.getmany(*remaining, timeout_ms=1000)
            for tp, found in batches.items():
                records.extend(r for r in found if r.offset < ends[tp])
                if found and found[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
        return records

    async def lag(self, groups: Sequence[str]) -> dict[str, int]:
        """Records each group has not committed yet, summed over the topic it reads; a
        partition with records and no committed offset counts whole."""
        read_by = {group: topic for topic, _, readers in INPUTS for group in readers}
        found: dict[str, int] = {}
        for group in groups:
            done = await self._admin.list_consumer_group_offsets(group)
            topic = read_by[group]
            partitions = [TopicPartition(topic, p) for p in await self._partitions(topic)]
            ends = await self._consumer.end_offsets(partitions)
            found[group] = sum(
                max(ends[tp] - (done[tp].offset if tp in done and done[tp].offset >= 0 else 0), 0)
                for tp in partitions
            )
        return found

    async def _partitions(self, topic: str) -> list[int]:
        [described] = await self._admin.describe_topics([topic])
        partitions = sorted(p["partition"] for p in described["partitions"])
        if not partitions:
            raise LookupError(f"{topic} has no partitions (does it exist?)")
        return partitions


# ---------------------------------------------------------------------- the generator's view


def customer_of(events: Sequence[dict[str, Any]]) -> dict[str, str]:
    """messageId -> the customer the profile's identity rules put the event with: the
    shopper's userId once any event linked their anonymousId to it, else the anonymousId."""
    user_of_anonymous = {
        e["anonymousId"]: e["userId"] for e in events if e.get("userId") and e.get("anonymousId")
    }
    found: dict[str, str] = {}
    for e in events:
        user = e.get("userId") or user_of_anonymous.get(e.get("anonymousId", ""))
        identity = ("user", user) if user else ("anon", e["anonymousId"])
        found[e["messageId"]] = customer_id_for(identity)  # type: ignore[arg-type]
    return found


@dataclass
class Expected:
    """One customer's figures, straight from the generator's events."""

    message_ids: set[str] = field(default_factory=set)
    page_views: int = 0
    orders: dict[str, Decimal] = field(default_factory=dict)
    email: str | None = None
    consent: list[tuple[str, bool]] = field(default_factory=list)  # (timestamp, granted)

    def add(self, event: dict[str, Any]) -> None:
        self.message_ids.add(event["messageId"])
        if event["type"] == "page":
            self.page_views += 1
        name = event.get("event")
        properties = event.get("properties", {})
        if name == "Order Completed":
            amount = properties.get("revenue", properties.get("total"))
            self.orders[properties["order_id"]] = Decimal(str(amount))
        traits = event.get("traits") or {}
        if traits.get("email"):
            self.email = traits["email"]
        if "email_marketing_consent" in traits:
            self.consent.append((event["timestamp"], bool(traits["email_marketing_consent"])))
        if name == "Unsubscribed":
            self.consent.append((event["timestamp"], False))

    def consented_at(self, at: datetime) -> bool:
        said = sorted(
            c for c in self.consent if c[0] <= at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        )
        return bool(said) and said[-1][1]


def expected_customers(events: Sequence[dict[str, Any]]) -> dict[str, Expected]:
    owners = customer_of(events)
    found: dict[str, Expected] = defaultdict(Expected)
    for event in events:
        found[owners[event["messageId"]]].add(event)
    return dict(found)


# ---------------------------------------------------------------------- the checks


async def check_pipeline(
    kafka: KafkaView,
    engine: AsyncEngine,
    everything: Sequence[dict[str, Any]],
    scenario: Sequence[dict[str, Any]],
    tally: Tally,
) -> None:
    """Touchpoints, profiles and scores of the customers `scenario`'s events touched;
    `everything` is every event acknowledged in the run (a returning shopper's history)."""
    customers = expected_customers(everything)
    touched = {customer_of(everything)[e["messageId"]] for e in scenario}

    on_topic: dict[str, list[Touchpoint]] = defaultdict(list)
    for record in await kafka.read(TOUCHPOINTS):
        if record.key and record.key.startswith(POISON_KEY_PREFIX):
            continue
        touchpoint = Touchpoint.from_json(record.value)
        on_topic[touchpoint.message_id].append(touchpoint)
    profiles_topic = latest_by_key(await kafka.read(PROFILES))
    scores_topic = latest_by_key(await kafka.read(SCORES))

    async with engine.connect() as connection:
        rows = {
            row.customer_id: row
            for row in await connection.execute(
                text(
                    "SELECT customer_id, state, snapshot FROM profile.customers "
                    "WHERE customer_id = ANY(:ids)"
                ),
                {"ids": sorted(touched)},
            )
        }
        store = PostgresScoringStore(connection)
        scored_profiles = await store.profiles(touched)
        scored_orders = await store.orders(touched)
        model = await store.latest_model()
    rules = ScoringSettings(env=Environment.LOCAL).standing_rules()

    for customer_id in sorted(touched):
        expected = customers[customer_id]
        missing = [m for m in expected.message_ids if m not in on_topic]
        tally.note("lost", len(missing), f"{customer_id}: acknowledged, not on {TOUCHPOINTS}")
        row = rows.get(customer_id)
        if row is None:
            tally.note("lost", len(expected.message_ids), f"{customer_id}: no profile")
            continue
        state = ProfileState.from_json(_json(row.state))
        tally.checked["profiles"] += 1
        _compare_counts(tally, customer_id, "page views", expected.page_views, state.page_views)
        orders = {order_id: order.revenue for order_id, order in state.orders.items()}
        _compare_counts(tally, customer_id, "orders", len(expected.orders), len(orders))
        if set(orders) == set(expected.orders) and orders != expected.orders:
            tally.note("wrong", 1, f"{customer_id}: order revenue {orders} != {expected.orders}")
        touchpoints = [tp for m in expected.message_ids for tp in on_topic.get(m, [])]
        if state != fold(ProfileState(), touchpoints):
            tally.note("wrong", 1, f"{customer_id}: stored profile != the fold of its events")
        snapshot = _json(row.snapshot)
        published = profiles_topic.get(customer_id)
        if published is None or orjson.loads(published) != snapshot:
            tally.note("wrong", 1, f"{customer_id}: latest {PROFILES} != stored snapshot")
        held = scored_profiles.get(customer_id)
        if held is None or held.model_dump(mode="json") != _scored_view(snapshot, held):
            tally.note("wrong", 1, f"{customer_id}: scoring holds another snapshot")
            continue
        ledger = scored_orders.get(customer_id, [])
        if {o.order_id for o in ledger} != set(expected.orders):
            tally.note("wrong", 1, f"{customer_id}: scoring's orders != the customer's")
        record = scores_topic.get(customer_id)
        if record is None:
            tally.note("lost", 1, f"{customer_id}: never reached {SCORES}")
            continue
        scores = CustomerScores.model_validate_json(record)
        if model is None or scores.model_version != model.version:
            tally.note("wrong", 1, f"{customer_id}: scored with model {scores.model_version}")
            continue
        again, _ = score_customer(held, ledger, model, rules, scores.computed_at)
        tally.checked["scores recomputed"] += 1
        if again != scores:
            tally.note("wrong", 1, f"{customer_id}: {SCORES} != a recomputation")


def _json(value: Any) -> Any:
    """A jsonb column as read: already decoded, or its text."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _scored_view(snapshot: dict[str, Any], held: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = type(held).model_validate(snapshot).model_dump(mode="json")
    return dumped


def _compare_counts(tally: Tally, customer_id: str, what: str, expected: int, actual: int) -> None:
    if actual < expected:
        tally.note("lost", expected - actual, f"{customer_id}: {what} {actual} of {expected}")
    elif actual > expected:
        tally.note(
            "duplicated", actual - expected, f"{customer_id}: {what} {actual} for {expected}"
        )


async def check_email(
    engine: AsyncEngine,
    mailpit_api: str,
    everything: Sequence[dict[str, Any]],
    live_orders: dict[str, set[str]],
    since: datetime,
    tally: Tally,
) -> int:
    """The emails notify decided from `since` on against Mailpit; returns how many emails
    Mailpit holds. An email still waiting for its time (a welcome's wait) is not counted."""
    customers = expected_customers(everything)
    async with engine.connect() as connection:
        rows = list(
            await connection.execute(
                text(
                    "SELECT notification_id, customer_id, template, kind, status, reason, "
                    "to_address, created_at, due_at FROM notify.notifications "
                    "WHERE created_at >= :since"
                ),
                {"since": since},
            )
        )
        suppressed = {
            row.address: row.created_at
            for row in await connection.execute(
                text("SELECT address, created_at FROM notify.suppressions")
            )
        }
    messages = await _mailpit_messages(mailpit_api)
    copies = Counter(m["MessageID"].split("@", 1)[0] for m in messages)
    async with engine.connect() as connection:
        decided = set(
            await connection.scalars(text("SELECT notification_id FROM notify.notifications"))
        )
    for message_id, count in copies.items():
        if message_id not in decided:
            tally.note("wrong", count, f"email {message_id} is no notification notify decided")
    now = datetime.now(UTC)
    for row in rows:
        if row.status == "pending" and row.due_at > now:
            tally.checked["emails waiting"] += 1
            continue  # waiting for its time
        tally.checked[f"emails {row.status}{f' ({row.reason})' if row.reason else ''}"] += 1
        found = copies.get(row.notification_id, 0)
        allowed = _allowed_copies(row.status, row.kind)
        if allowed is None:
            tally.note("lost", 1, f"notification {row.notification_id} left {row.status}")
            continue
        low, high = allowed
        if found < low:
            tally.note(
                "lost",
                low - found,
                f"{row.template} {row.notification_id} ({row.status}) not in Mailpit",
            )
        if found > high:
            tally.note(
                "duplicated",
                found - high,
                f"{row.template} {row.notification_id} ({row.status}) {found} times",
            )
        if not found:
            continue
        expected = customers.get(row.customer_id)
        if row.kind == "marketing" and not (expected and expected.consented_at(row.created_at)):
            tally.note("wrong", 1, f"marketing {row.template} to {row.customer_id} without consent")
        blocked = suppressed.get((row.to_address or "").lower())
        if blocked is not None and blocked < row.created_at:
            tally.note("wrong", 1, f"{row.template} to the suppressed {row.to_address}")
    thanked = Counter(
        row.customer_id
        for row in rows
        if row.template == "order_thank_you" and copies.get(row.notification_id, 0) >= 1
    )
    for customer_id, orders in live_orders.items():
        expected = customers.get(customer_id)
        if expected is None or expected.email is None:
            continue
        if thanked[customer_id] < len(orders):
            tally.note(
                "lost",
                len(orders) - thanked[customer_id],
                f"{customer_id}: {thanked[customer_id]} thank-yous for {len(orders)} live orders",
            )
    return len(messages)


def _allowed_copies(status: str, kind: str) -> tuple[int, int] | None:
    """How many copies of an email Mailpit may hold once its status is settled; None while it
    is not (pending or sending at the end: the email was never settled)."""
    if status == "sent":
        return (1, 1)
    if status == "uncertain":
        return (1, 2) if kind == "transactional" else (0, 1)
    if status in ("pending", "sending"):
        return None
    return (0, 0)  # suppressed, failed, bounced: never delivered


async def _mailpit_messages(api: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        while True:
            answer = await client.get(
                f"{api}/messages", params={"start": len(found), "limit": 1000}
            )
            answer.raise_for_status()
            page = answer.json()["messages"]
            found.extend(page)
            if len(page) < 1000:
                return found


async def check_dead_letters(
    kafka: KafkaView, poison: Sequence[tuple[str, str]], tally: Tally
) -> int:
    """Each dead-letter topic holds each poison record once per group reading its topic, and
    nothing else; returns how many dead letters there are."""
    expected = Counter(
        (topic, key, group)
        for topic, key in poison
        for input_topic, _, groups in INPUTS
        if input_topic == topic
        for group in groups
    )
    found: Counter[tuple[str, str, str]] = Counter()
    for _, dead_letters, _ in INPUTS:
        for record in await kafka.read(dead_letters):
            letter = DeadLetter.model_validate_json(record.value)
            tally.checked["dead letters"] += 1
            found[(letter.original_topic, letter.key or "", letter.consumer_group)] += 1
    for entry, count in (found - expected).items():
        kind = "duplicated" if entry in expected else "wrong"
        tally.note(kind, count, f"dead letter {entry}")
    for entry, count in (expected - found).items():
        tally.note("lost", count, f"poison {entry} not dead-lettered")
    return sum(found.values())


def live_orders_of(events: Sequence[dict[str, Any]], since: datetime) -> dict[str, set[str]]:
    """Customer -> the orders placed live (timestamps from `since` on)."""
    owners = customer_of(events)
    cutoff = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    found: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e.get("event") == "Order Completed" and e["timestamp"] >= cutoff:
            found[owners[e["messageId"]]].add(e["properties"]["order_id"])
    return dict(found)
