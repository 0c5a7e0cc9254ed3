"""What browser SDKs load from ingest: analytics.js's settings and metrics, the analytics.js
script for the classic snippet, RudderStack's source config; and RudderStack's identify traits."""

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from services.ingest import sdk
from services.ingest.domain.body import BodyError
from services.ingest.domain.intake import IntakeRules, identify_traits_from_context
from services.ingest.domain.keys import Source
from services.ingest.domain.sdk import (
    MAX_METRIC_SERIES,
    PublicBase,
    rudderstack_source_config,
    sdk_metric_counts,
    segment_settings,
)
from services.ingest.keys import CachedKeyLookup
from services.ingest.settings import IngestSettings
from services.runtime.settings import Environment, SettingsError, load_settings
from tests.unit.ingest.test_keys import Repository

SHOP = Source("src_1", "shop")
KEY = "wk_valid"
_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_public_base_splits_a_url_as_analytics_js_does() -> None:
    assert PublicBase.of("https://ingest.shop.example") == PublicBase(
        "https", "ingest.shop.example"
    )
    behind_a_path = PublicBase.of("http://shop.example:8443/retain/")
    assert behind_a_path == PublicBase("http", "shop.example:8443/retain")
    assert behind_a_path.api_host == "shop.example:8443/retain/v1"
    with pytest.raises(ValueError, match="not an http"):
        PublicBase.of("ftp://shop.example")


def test_settings_point_analytics_js_and_its_metrics_at_ingest() -> None:
    settings = segment_settings(KEY, PublicBase("https", "ingest.shop.example"), 0.25)
    assert settings["integrations"] == {
        "Segment.io": {"apiKey": KEY, "apiHost": "ingest.shop.example/v1", "protocol": "https"}
    }
    assert settings["metrics"] == {"host": "ingest.shop.example/v1", "sampleRate": 0.25}
    # Nothing else for analytics.js to load.
    assert settings["remotePlugins"] == []
    assert settings["enabledMiddleware"] == {}
    assert settings["legacyVideoPluginsEnabled"] is False


def test_over_plain_http_analytics_js_metrics_are_off() -> None:
    # analytics.js would send them over https, where a plain-http ingest does not answer.
    settings = segment_settings(KEY, PublicBase("http", "127.0.0.1:8080"), 0.25)
    assert settings["integrations"]["Segment.io"]["protocol"] == "http"
    assert settings["metrics"]["sampleRate"] == 0


def test_the_rudderstack_source_config_is_valid_for_the_sdk() -> None:
    config = rudderstack_source_config(KEY, SHOP)["source"]
    # What the SDK checks (isValidSourceConfig), and that it is enabled with no destination.
    assert config["id"] == "src_1"
    assert isinstance(config["config"], dict)
    assert config["destinations"] == []
    assert config["enabled"] is True
    assert config["config"]["statsCollection"]["errors"]["enabled"] is False


def test_metrics_are_counted_by_known_name_and_others_together() -> None:
    series = [
        {"type": "Counter", "metric": "analytics_js.invoke", "value": 1, "tags": {}},
        {"type": "Counter", "metric": "analytics_js.invoke", "value": 1, "tags": {}},
        {"type": "Counter", "metric": "analytics_js.invoke.error", "value": 1},
        {"metric": "made.up"},
        {"metric": ["not", "a", "name"]},
        "not an object",
    ]
    counts = sdk_metric_counts({"series": series})
    assert counts == {"analytics_js.invoke": 2, "analytics_js.invoke.error": 1, "other": 3}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "series: must be a list"),
        ({"series": {"metric": "analytics_js.invoke"}}, "series: must be a list"),
        ({"series": [{}] * (MAX_METRIC_SERIES + 1)}, f"at most {MAX_METRIC_SERIES}"),
    ],
)
def test_a_metrics_body_of_another_shape_is_a_400(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BodyError, match=message) as refused:
        sdk_metric_counts(body)
    assert refused.value.status == 400


# --- RudderStack's identify: traits in context.traits ---------------------------------------

RUDDER_CONTEXT = {"traits": {"email": "ada@shop.example"}, "library": {"name": "RudderLabs"}}


def test_an_identify_with_traits_only_in_its_context_gets_them_as_traits() -> None:
    event = {"type": "identify", "userId": "u-1", "context": dict(RUDDER_CONTEXT)}
    moved = identify_traits_from_context(event, None)
    assert moved["traits"] == {"email": "ada@shop.example"}
    assert moved["context"] == {"library": {"name": "RudderLabs"}}  # moved, not copied
    # The endpoint's type decides, as it does for validation.
    assert "traits" in identify_traits_from_context({"context": dict(RUDDER_CONTEXT)}, "identify")


@pytest.mark.parametrize(
    "event",
    [
        {"type": "identify", "traits": {"email": "b@x.example"}, "context": RUDDER_CONTEXT},
        {"type": "track", "event": "Clicked", "context": RUDDER_CONTEXT},
        {"type": "identify", "context": {"traits": "not an object"}},
        {"type": "identify", "context": None},
    ],
)
def test_other_events_keep_their_traits_where_they_are(event: dict[str, Any]) -> None:
    before = repr(event)
    assert repr(identify_traits_from_context(event, None)) == before


def test_a_batch_context_shared_by_its_events_is_not_changed_under_the_others() -> None:
    rules = IntakeRules(max_event_bytes=32_768, max_expanded_batch_bytes=2_048_000)
    body = {
        "context": {"traits": {"email": "ada@shop.example"}},
        "batch": [
            {"type": "identify", "userId": "u-1", "messageId": "m-1"},
            {"type": "track", "userId": "u-1", "event": "Clicked", "messageId": "m-2"},
        ],
    }
    intake = rules.take_batch(body, source_id="src_1", received_at=_NOW)
    identify, track = (touchpoint.event for touchpoint in intake.accepted)
    assert identify.traits == {"email": "ada@shop.example"}  # type: ignore[union-attr]
    assert track.context is not None
    assert dict(track.context)["traits"] == {"email": "ada@shop.example"}


# --- the HTTP shell ---------------------------------------------------------------------------


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


@pytest.fixture
def analytics_js(tmp_path: Path) -> Path:
    _write(tmp_path, "standalone.js", "/* standalone */")
    _write(tmp_path, "index.js", "/* the npm bundle: not served */")
    _write(tmp_path, "auto-track.bundle.f131ce01a05e3a33a8c1.js", "/* auto-track */")
    _write(tmp_path, "auto-track.bundle.f131ce01a05e3a33a8c1.js.map", "{}")
    return tmp_path


def _client(settings: IngestSettings, assets: sdk.AnalyticsJsAssets | None) -> httpx.AsyncClient:
    app = FastAPI()
    keys = CachedKeyLookup(Repository({KEY: SHOP}), ttl_seconds=0)
    sdk.install(app, sdk.SdkApi(settings, keys, assets))
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://ingest.local:8080")


def _settings(**values: Any) -> IngestSettings:
    return IngestSettings(env=Environment.LOCAL, **values)


async def test_settings_name_the_host_the_browser_used_or_the_public_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with _client(_settings(), None) as client:
        answer = await client.get(f"/v1/projects/{KEY}/settings")
        unknown = await client.get("/v1/projects/wk_unknown/settings")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "private, max-age=300"
    integration = answer.json()["integrations"]["Segment.io"]
    assert (integration["apiHost"], integration["protocol"]) == ("ingest.local:8080/v1", "http")
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "unknown or revoked write key"

    monkeypatch.setenv("RETAIN_ENV", Environment.LOCAL.value)
    monkeypatch.setenv("RETAIN_INGEST_PUBLIC_URL", "https://ingest.shop.example/")
    async with _client(load_settings(IngestSettings), None) as client:
        answer = await client.get(f"/v1/projects/{KEY}/settings")
    integration = answer.json()["integrations"]["Segment.io"]
    assert (integration["apiHost"], integration["protocol"]) == ("ingest.shop.example/v1", "https")
    assert answer.json()["metrics"]["sampleRate"] == 0.1


async def test_the_rudderstack_source_config_takes_the_key_from_basic_or_the_query() -> None:
    async with _client(_settings(), None) as client:
        basic = await client.get("/sourceConfig/", params={"p": "npm"}, auth=(KEY, ""))
        query = await client.get("/sourceConfig", params={"writeKey": KEY})
        missing = await client.get("/sourceConfig/")
        unknown = await client.get("/sourceConfig/", auth=("wk_unknown", ""))
    assert basic.json()["source"]["id"] == query.json()["source"]["id"] == "src_1"
    assert missing.status_code == unknown.status_code == 401


async def test_metrics_are_answered_and_counted() -> None:
    series = {"series": [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1}]}
    counter = sdk.ANALYTICS_JS_METRICS.labels("analytics_js.invoke")
    before = counter._value.get()
    async with _client(_settings(), None) as client:
        answer = await client.post(
            "/v1/m", content=orjson.dumps(series), headers={"Content-Type": "text/plain"}
        )
        too_large = await client.post("/v1/m", content=b" " * (sdk.MAX_METRICS_BYTES + 1))
        not_json = await client.post("/v1/m", content=b"series")
    assert answer.status_code == 200
    assert answer.json() == {"success": True}
    assert counter._value.get() == before + 1
    assert too_large.status_code == 413
    assert not_json.status_code == 400


async def test_the_snippet_script_and_its_bundles_are_served_compressed(
    analytics_js: Path,
) -> None:
    assets = sdk.AnalyticsJsAssets.load(analytics_js)
    assert set(assets.bundles) == {"auto-track.bundle.f131ce01a05e3a33a8c1.js"}
    async with _client(_settings(), assets) as client:
        script = await client.get(f"/analytics.js/v1/{KEY}/analytics.min.js")
        plain = await client.get(
            f"/analytics.js/v1/{KEY}/analytics.min.js", headers={"Accept-Encoding": "identity"}
        )
        bundle = await client.get(
            "/analytics-next/bundles/auto-track.bundle.f131ce01a05e3a33a8c1.js"
        )
        other = await client.get("/analytics-next/bundles/index.js")
        escape = await client.get("/analytics-next/bundles/..%2Fstandalone.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["content-encoding"] == "gzip"
    assert script.text == "/* standalone */"  # httpx inflates it
    assert "content-encoding" not in plain.headers
    assert plain.content == b"/* standalone */"
    assert gzip.decompress(assets.standalone.gzipped) == b"/* standalone */"
    assert bundle.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert bundle.text == "/* auto-track */"
    assert other.status_code == escape.status_code == 404


async def test_without_a_folder_the_script_is_a_404_saying_how_to_serve_it() -> None:
    async with _client(_settings(), None) as client:
        answer = await client.get(f"/analytics.js/v1/{KEY}/analytics.min.js")
    assert answer.status_code == 404
    assert "RETAIN_ANALYTICS_JS_DIR" in answer.json()["message"]


def test_the_folder_must_hold_analytics_js(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RETAIN_ENV", Environment.LOCAL.value)
    monkeypatch.setenv("RETAIN_ANALYTICS_JS_DIR", str(tmp_path))
    with pytest.raises(SettingsError, match="RETAIN_ANALYTICS_JS_DIR"):
        load_settings(IngestSettings)
    _write(tmp_path, "standalone.js", "")
    assert load_settings(IngestSettings).analytics_js_dir == tmp_path
