"""The shape of `GET /api/admin/stats` (docs/design.md section 10; seed 002's `GET /api/v1/stats`),
whose figures are also gauges on `/metrics` (docs/operations.md)."""

from __future__ import annotations

from pydantic import Field

from contract.http import Shape


class AdminStats(Shape):
    """Server-wide figures for admins, read when asked (each a count, not a cache)."""

    # Users' MQTT connections open on the embedded broker of this process; null when the
    # broker is another process (Mosquitto), which mqim does not count.
    connections: int | None = Field(ge=0)
    # Users whose presence is online or idle (set by their clients' `presence` op).
    online_users: int = Field(ge=0)
    # Accounts that are not deleted.
    users: int = Field(ge=0)
    # Threads of every kind, dissolved ones included.
    threads: int = Field(ge=0)
    # Messages stored (thread events such as joins are not counted).
    messages: int = Field(ge=0)
    # Messages stored in the last 60 seconds.
    messages_last_minute: int = Field(ge=0)
    # Seconds since this API process started.
    uptime_s: int = Field(ge=0)
