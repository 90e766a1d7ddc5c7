"""Prometheus metrics of the use cases, shared by every process that runs them (docs/operations.md).

Defined here, below api/ and bridge/, because both run the same actions in one process
(`mqim serve`) and a metric may be registered only once. Transport-only metrics live with their
transport: api/middleware.py (HTTP), broker/embedded/observe.py (the embedded broker),
broker/link/uplinks.py (the in-process uplink queue), bridge/metrics.py (batches).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES_PERSISTED = Counter(
    "mqim_messages_persisted_total",
    "Messages stored (HTTP and MQTT sends; a retried client_msg_id counts once)")
EVENTS_PUBLISHED = Counter(
    "mqim_events_published_total",
    "Events the use cases published after a commit, by event type", ["type"])
ERRORS = Counter(
    "mqim_errors_total", "Errors answered: HTTP error envelopes and MQTT error events, by code",
    ["transport", "code", "error"])
DB_APPEND_SECONDS = Histogram(
    "mqim_db_append_seconds",
    "Time to store one batch of messages (one transaction: seqs, rows, thread)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def count_error(transport: str, code: int, error: str) -> None:
    ERRORS.labels(transport=transport, code=str(code), error=error).inc()
