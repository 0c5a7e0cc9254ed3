"""What browser SDKs ask of ingest besides events: the paths analytics.js posts to, the settings
it loads at start (Segment's CDN settings), RudderStack's source config, and analytics.js's own
metrics.

Pure: the HTTP shell (services/ingest/sdk.py) looks the write key up and writes the answers.
"""

from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from schemas.segment import EventType
from services.ingest.domain.body import BodyError
from services.ingest.domain.keys import Source

# analytics.js (@segment/analytics-next) posts each event to `${protocol}://${apiHost}/` plus
# the first letter of its type (plugins/segmentio/index.ts), apiHost being `<host>/v1`; in
# batching mode to `/b` (batched-dispatcher.ts), and its metrics to `/m` (remote-metrics.ts).
SHORT_EVENT_PATHS: dict[str, EventType] = {
    "t": "track",
    "i": "identify",
    "p": "page",
    "s": "screen",
    "g": "group",
    "a": "alias",
}
SHORT_BATCH_PATH = "b"
METRICS_PATH = "m"


@dataclass(frozen=True)
class PublicBase:
    """Where browsers reach ingest: `protocol://host_path`, as analytics.js splits a URL."""

    protocol: str  # "http" or "https"
    host_path: str  # host, port and any path prefix, without a trailing slash

    @classmethod
    def of(cls, url: str) -> "PublicBase":
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {url!r}")
        return cls(parts.scheme, parts.netloc + parts.path.rstrip("/"))

    @property
    def api_host(self) -> str:
        """analytics.js's `apiHost`: where the tracking API is, without the scheme."""
        return f"{self.host_path}/v1"


def segment_settings(
    write_key: str, base: PublicBase, metrics_sample_rate: float
) -> dict[str, Any]:
    """The settings analytics.js loads from `<cdnURL>/v1/projects/<writeKey>/settings`.

    Only the Segment.io destination, pointed at this ingest: no device-mode destinations,
    middleware, remote plugins or tracking plans, so analytics.js loads nothing else.
    analytics.js sends its metrics over https unless its own load options say otherwise, so
    over plain http they are turned off rather than sent where nothing answers.
    """
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": base.api_host,
                "protocol": base.protocol,
            }
        },
        "metrics": {
            "host": base.api_host,
            "sampleRate": metrics_sample_rate if base.protocol == "https" else 0,
        },
        "plan": {},
        "remotePlugins": [],
        "enabledMiddleware": {},
        "middlewareSettings": {},
        "legacyVideoPluginsEnabled": False,
    }


def rudderstack_source_config(write_key: str, source: Source) -> dict[str, Any]:
    """What RudderStack's JavaScript SDK loads from `<configUrl>/sourceConfig/`.

    An enabled source with no device-mode destinations; the SDK's error and metrics reports
    (sent to RudderStack's own services) stay off.
    """
    return {
        "source": {
            "id": source.id,
            "name": source.name,
            "writeKey": write_key,
            "enabled": True,
            "workspaceId": "retain",
            "config": {
                "statsCollection": {"errors": {"enabled": False}, "metrics": {"enabled": False}}
            },
            "destinations": [],
        }
    }


# The metrics analytics.js reports (core/stats); it reports nothing else.
ANALYTICS_JS_METRICS = frozenset(
    {
        "analytics_js.invoke",
        "analytics_js.invoke.error",
        "analytics_js.integration.invoke",
        "analytics_js.integration.invoke.error",
    }
)
OTHER_METRIC = "other"
MAX_METRIC_SERIES = 100  # analytics.js queues at most 20 between flushes


def sdk_metric_counts(body: dict[str, Any]) -> Counter[str]:
    """How many of each metric a `/v1/m` body reports: `{"series": [{"metric": ..., ...}]}`.

    Names outside ANALYTICS_JS_METRICS count as OTHER_METRIC, so what a client sends cannot
    add label values.
    """
    series = body.get("series")
    if not isinstance(series, list):
        raise BodyError(400, "series: must be a list of metrics")
    if len(series) > MAX_METRIC_SERIES:
        raise BodyError(400, f"series: at most {MAX_METRIC_SERIES} metrics per request")
    counts: Counter[str] = Counter()
    for item in series:
        name = item.get("metric") if isinstance(item, dict) else None
        if not (isinstance(name, str) and name in ANALYTICS_JS_METRICS):
            name = OTHER_METRIC
        counts[name] += 1
    return counts
