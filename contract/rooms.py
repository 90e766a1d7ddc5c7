"""Chat rooms on the wire: where a room is, and one row of `GET /api/rooms` (docs/threads.md)."""

from __future__ import annotations

from contract.http import Shape


class Geo(Shape):
    """A place: latitude in [-90, 90], longitude in [-180, 180], in degrees."""

    lat: float
    lng: float


class RoomListItem(Shape):
    """GET /api/rooms: a room anyone may join. `distance_km` (great-circle, rounded to metres) is
    set when the list was asked `near` a place, null otherwise."""

    thread_id: str
    name: str | None
    member_count: int
    capacity: int | None
    geo: Geo | None
    distance_km: float | None
