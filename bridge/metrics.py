"""Prometheus metrics of the bridge (served by the API's /metrics when in one process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

UPLINKS = Counter("mqim_bridge_uplinks_total", "Uplink commands received by the bridge")
BATCH_SIZE = Histogram(
    "mqim_bridge_batch_size", "Uplinks handled per batch (one atomic write for the sends)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
BATCH_SECONDS = Histogram(
    "mqim_bridge_batch_seconds", "Time to store a batch and publish its events and acks",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
