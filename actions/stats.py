"""The admin figures: `GET /api/admin/stats` and the same figures as gauges on `/metrics`.

    figures(connections, uptime_s) -> AdminStats       (the caller checks `check_admin` first)
    publish_gauges(stats)                              (before /metrics is rendered)

The database counts come from models/stats.py. `connections` and `uptime_s` are the process's
own: the API passes the embedded broker's connected-client gauge when that broker runs in the
same process (None otherwise) and its own start time.
"""

from __future__ import annotations

from prometheus_client import Gauge

from contract.stats import AdminStats
from models.stats import counts

# One gauge per figure, named `mqim_stats_<figure>`, set from the database when /metrics is
# scraped (by the API process; bridge workers do not serve them).
_GAUGES = {
    name: Gauge(f"mqim_stats_{name}", f"GET /api/admin/stats: {name.replace('_', ' ')}")
    for name in ("online_users", "users", "threads", "messages", "messages_last_minute",
                 "uptime_s")
}


async def figures(connections: int | None, uptime_s: int) -> AdminStats:
    c = await counts()
    return AdminStats(connections=connections, online_users=c.online_users, users=c.users,
                      threads=c.threads, messages=c.messages,
                      messages_last_minute=c.messages_last_minute, uptime_s=uptime_s)


def publish_gauges(stats: AdminStats) -> None:
    """`connections` is not repeated: it is the broker's own `mqim_mqtt_connected_clients`."""
    for name, gauge in _GAUGES.items():
        gauge.set(getattr(stats, name))
