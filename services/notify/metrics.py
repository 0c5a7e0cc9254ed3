"""Notify's own Prometheus metrics (the shared ones are in services/runtime/metrics.py)."""

from prometheus_client import Counter

EMAILS = Counter(
    "retain_notify_emails_total",
    "notifications.v1 records written: emails sent, suppressed (by reason), bounced, uncertain",
    ["type", "reason"],
)
