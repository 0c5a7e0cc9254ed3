"""Journeys are data: every shipped file loads, editors' JSON Schema agrees with the model, and a
mistake in a file is refused at load time, naming the file and the field."""

import json
import re
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from schemas.journey_v1 import (
    EVENT_MODELS,
    EventType,
    Journey,
    SendStep,
    format_duration,
    parse_duration,
)
from services.notify.domain import CatalogError, JourneyError, load_catalog, parse_journey
from services.notify.journeys import DIRECTORY, load

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "schemas" / "jsonschema" / "journey.v1.json").read_text())
DOCS = (ROOT / "docs" / "journeys.md").read_text()
SHIPPED = sorted(DIRECTORY.glob("*.yaml"))

EXPECTED = {
    "welcome",
    "abandoned_cart",
    "post_purchase",
    "win_back",
    "tier_upgrade",
    "ladder_step_up",
    "referral_thank_you",
    "points_reminder",
}

MINIMAL = """\
version: 1
id: demo
name: Demo
triggers:
  - event: signed_up
re_entry: {policy: once}
steps:
  - send: {template: welcome}
"""


def _error(text: str, source: str = "demo.yaml") -> str:
    with pytest.raises(JourneyError) as caught:
        parse_journey(text, source)
    return str(caught.value)


def test_every_shipped_journey_loads() -> None:
    catalog = load()
    assert set(catalog.journeys) == EXPECTED
    assert {path.stem for path in SHIPPED} == EXPECTED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_the_json_schema_accepts_every_shipped_file(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), SCHEMA)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_a_journey_written_back_reads_the_same(path: Path) -> None:
    journey = parse_journey(path.read_text(), path.name)
    written = journey.model_dump(mode="json", exclude_none=True)
    assert Journey.model_validate(written) == journey
    assert Journey.model_validate_json(json.dumps(written)) == journey
    jsonschema.validate(written, SCHEMA)


def test_every_template_is_listed_in_the_docs() -> None:
    templates = load().templates()
    assert templates, "the journeys send something"
    listed = set(re.findall(r"^\| `([a-z0-9_.-]+)` \|", DOCS, flags=re.MULTILINE))
    assert set(templates) <= listed, set(templates) - listed
    for template, kind in templates.items():
        assert re.search(rf"^\| `{re.escape(template)}` \| {kind} \|", DOCS, re.MULTILINE), template


def test_every_shipped_journey_is_in_the_docs_table() -> None:
    for journey in load().journeys.values():
        assert f"`{journey.id}`" in DOCS


def test_the_event_types_are_lifecycle_v1_less_erasure() -> None:
    from typing import get_args

    assert set(get_args(EventType)) == set(EVENT_MODELS)
    assert "customer_erased" not in EVENT_MODELS


def test_the_shipped_journeys_are_what_the_issue_asks() -> None:
    journeys = load().journeys
    cart = journeys["abandoned_cart"]
    assert [m.event for m in cart.exit_when] == ["cart_activity"]
    assert cart.goal is not None
    assert cart.goal.event == "order_completed"
    post = journeys["post_purchase"]
    kinds = [s.send.kind or post.kind for s in post.steps if isinstance(s, SendStep)]
    assert kinds == ["transactional", "marketing", "marketing"]
    assert journeys["win_back"].re_entry.cooldown == timedelta(days=90)
    assert journeys["welcome"].re_entry.policy == "once"


def test_json_files_load_too() -> None:
    data = yaml.safe_load(MINIMAL)
    journey = parse_journey(json.dumps(data), "demo.json")
    assert journey.id == "demo"
    assert "line 1: not JSON" in _error("{", "demo.json")


def test_a_where_on_a_field_the_event_lacks_names_the_file_and_the_field() -> None:
    text = MINIMAL.replace(
        "  - event: signed_up",
        "  - event: order_completed\n    where:\n      - {field: event.cart_id, op: eq, value: x}",
    )
    message = _error(text, "demo.yaml")
    assert (
        message == "demo.yaml: triggers[0].where[0].field: order_completed has no field 'cart_id'"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("send: {template: welcome}", "wait: {until_local_time: 10:00}"),
            "steps[0].wait.until_local_time: a time of day is quoted text",
        ),
        (
            ("send: {template: welcome}", "sned: {template: welcome}"),
            "steps[0]: a step is a mapping with exactly one key",
        ),
        (
            ("send: {template: welcome}", "send: {template: welcome, kind: promo}"),
            "steps[0].send.kind:",
        ),
        (
            ("send: {template: welcome}", "send: {templat: welcome}"),
            "steps[0].send.templat: unknown key",
        ),
        (
            ("send: {template: welcome}", "wait: {duration: 4 hours}"),
            'steps[0].wait.duration: a duration is text such as "30m"',
        ),
        (
            ("send: {template: welcome}", "wait: {duration: 0m}"),
            "steps[0].wait.duration: a duration must be more than 0",
        ),
        (
            ("send: {template: welcome}", "wait: {duration: 4h}"),
            "steps: a journey sends at least one email",
        ),
        (
            ("re_entry: {policy: once}", "re_entry: {policy: once_per_key}"),
            "re_entry: key is required with once_per_key",
        ),
        (
            ("re_entry: {policy: once}", "re_entry: {policy: once_per_key, key: order_id}"),
            "re_entry.key: signed_up has no field 'order_id'",
        ),
        (
            ("re_entry: {policy: once}", "re_entry: {policy: cooldown, cooldown: 1h}"),
            "re_entry.cooldown: must be at least max_trigger_age",
        ),
        (("name: Demo", "name: Demo\nname: Again"), "line 4: not YAML: duplicate key 'name'"),
        (("id: demo", "id: other"), "id: 'other' must be the file's name (other.yaml)"),
        (("version: 1", "version: 2"), "version: Input should be 1"),
        (("version: 1\n", ""), "version: required"),
        (("triggers:", "colour: blue\ntriggers:"), "colour: unknown key"),
        (
            ("  - event: signed_up", "  - event: customer_erased"),
            "triggers[0].event: Input should be",
        ),
    ],
)
def test_mistakes_are_refused_naming_the_field(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in MINIMAL
    message = _error(MINIMAL.replace(old, new, 1))
    assert message.startswith("demo.yaml: "), message
    assert expected in message, message


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            "{field: event.status, op: eq, value: opted_inn}",
            "triggers[0].where[0]: event.status 'opted_inn' is not one of unknown, opted_in, "
            "opted_out",
        ),
        ("{field: event.status, op: gt, value: 1}", "is literal, not a number"),
        ("{field: event.status, op: in, value: []}", "in needs a non-empty list"),
        ("{field: event.status, op: exists, value: 1}", "exists takes no value"),
        (
            "{field: trigger.status, op: exists}",
            "here a field starts with event or profile or scores",
        ),
        (
            "{field: profile.loyalty.points, op: gt, value: 1}",
            "profiles.v1 has no field 'loyalty.points'",
        ),
        (
            "{field: scores.recommendations, op: eq, value: p-1}",
            "is a list: only exists and missing apply",
        ),
        (
            "{field: scores.churn_risk, op: gt, value: high}",
            "gt compares numbers; the value must be a number",
        ),
    ],
)
def test_conditions_are_checked_against_the_models(condition: str, expected: str) -> None:
    text = MINIMAL.replace(
        "  - event: signed_up", f"  - event: consent_changed\n    where:\n      - {condition}"
    )
    assert expected in _error(text)


def test_step_conditions_read_the_trigger_profile_and_scores() -> None:
    step = (
        "  - condition:\n      all:\n"
        "        - {field: trigger.method, op: exists}\n"
        "        - {field: profile.traits.plan, op: eq, value: pro}\n"
        "        - {field: scores.rfm.segment, op: eq, value: champions}\n"
        "  - send: {template: welcome}"
    )
    journey = parse_journey(MINIMAL.replace("  - send: {template: welcome}", step), "demo.yaml")
    assert len(journey.steps) == 2
    wrong = MINIMAL.replace(
        "  - send: {template: welcome}",
        "  - condition: {all: [{field: event.method, op: exists}]}\n  - send: {template: welcome}",
    )
    assert (
        "steps[0].condition.all[0].field: 'event.method': here a field starts with trigger"
        in _error(wrong)
    )
    absent = MINIMAL.replace(
        "  - send: {template: welcome}",
        "  - condition: {any: [{field: trigger.order_id, op: exists}]}\n"
        "  - send: {template: welcome}",
    )
    assert "steps[0].condition.any[0].field: signed_up has no field 'order_id'" in _error(absent)


def test_a_catalog_reports_every_bad_file_at_once() -> None:
    good = MINIMAL
    bad_a = MINIMAL.replace("id: demo", "id: a").replace("version: 1", "version: 3")
    bad_b = MINIMAL.replace("id: demo", "id: b").replace(
        "{template: welcome}", "{template: Welcome!}"
    )
    with pytest.raises(CatalogError) as caught:
        load_catalog([("demo.yaml", good), ("a.yaml", bad_a), ("b.yaml", bad_b)])
    sources = [error.source for error in caught.value.errors]
    assert sources == ["a.yaml", "b.yaml"]
    assert "b.yaml: steps[0].send.template:" in str(caught.value)
    with pytest.raises(CatalogError, match=r"is also demo\.yaml"):
        load_catalog([("demo.yaml", good), ("demo.json", json.dumps(yaml.safe_load(good)))])


def test_a_directory_loads_with_file_names_in_errors(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text(MINIMAL)
    (tmp_path / "README.txt").write_text("not a journey")
    assert list(load(tmp_path).journeys) == ["demo"]
    (tmp_path / "broken.yml").write_text("version: [")
    with pytest.raises(CatalogError, match=r"broken\.yml: line \d+: not YAML"):
        load(tmp_path)


@given(st.integers(min_value=1, max_value=3650 * 86400))
def test_durations_read_what_they_write(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("4h", timedelta(hours=4)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("PT4H30M", timedelta(hours=4, minutes=30)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("P2D", timedelta(days=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert re.match(SCHEMA["properties"]["max_trigger_age"]["pattern"], text)
