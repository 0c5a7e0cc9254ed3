"""The PromQL of the Grafana dashboard and the alert rules, and the metric names it reads."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
OBSERVABILITY = ROOT / "deploy" / "observability"
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "retain.json"
ALERTS = OBSERVABILITY / "alerts.yml"

_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_OPERATORS = frozenset({"and", "or", "unless", "bool", "offset"})
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def dashboard_queries() -> dict[str, str]:
    """Panel title -> query, for every query of every panel."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries[f"{panel['title']} ({target['refId']})"] = target["expr"]
    return queries


def alert_queries() -> dict[str, str]:
    """Alert name -> its expression."""
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def metric_names(query: str) -> set[str]:
    """The series names a query selects: every identifier that is not a function, a keyword,
    a label (inside braces or a grouping), a duration, or a Grafana variable."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)  # label values
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\w+", " ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group(0)
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function
        if name in _KEYWORDS or name in _OPERATORS:
            continue
        names.add(name)
    return names


def series_names(exposition: str) -> set[str]:
    """Every series name a /metrics text can carry, including families with no sample yet."""
    from prometheus_client.parser import text_string_to_metric_families

    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names
