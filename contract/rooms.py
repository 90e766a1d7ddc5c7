"""Chat rooms on the wire: one row of `GET /api/rooms` (docs/threads.md). A room's place is the
`Geo` of contract/threads.py, as thread details show it."""

from __future__ import annotations

from contract.http import Shape
from contract.threads import Geo


class RoomListItem(Shape):
    """GET /api/rooms: a room anyone may join. `distance_km` (great-circle, rounded to metres) is
    set when the list was asked `near` a place, null otherwise."""

    thread_id: str
    name: str | None
    member_count: int
    capacity: int | None
    geo: Geo | None
    distance_km: float | None
