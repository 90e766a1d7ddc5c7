"""Chat rooms (docs/threads.md, seed 003): the checks of a new room's capacity and place, and
finding rooms for `GET /api/rooms`. Joining a room, and its capacity under concurrent joins, is
models/membership.py's (it counts members while holding the room's row lock).

Finding rooms near a place is two steps: the database narrows to a bounding box on (lat, lng)
(the thread table has an index on (kind, lat)), then the exact great-circle distance of each
candidate is computed here (haversine), the ones beyond the radius dropped, the rest sorted. No
spatial extension is needed, and SQLite and PostgreSQL answer alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tortoise.expressions import Q
from tortoise.functions import Count

from contract.errors import InvalidParameterError
from models.thread import Thread, ThreadKind, ThreadStatus

ROOM_CAPACITY_MIN = 2
ROOM_CAPACITY_MAX = 5000
RADIUS_KM_DEFAULT = 50.0
RADIUS_KM_MAX = 20000.0
ROOMS_LIMIT_DEFAULT = 50
ROOMS_LIMIT_MAX = 200
EARTH_RADIUS_KM = 6371.0088  # the mean radius
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180


def check_room(capacity: int | None, place: tuple[float, float] | None) -> None:
    """InvalidParameterError unless the capacity and the place (lat, lng) are in range."""
    if capacity is None or not ROOM_CAPACITY_MIN <= capacity <= ROOM_CAPACITY_MAX:
        raise InvalidParameterError(
            f"a room needs a capacity from {ROOM_CAPACITY_MIN} to {ROOM_CAPACITY_MAX}")
    if place is not None:
        check_place(*place)


def check_place(lat: float, lng: float) -> None:
    # Written so that NaN fails too (every comparison with NaN is false).
    if not -90 <= lat <= 90:
        raise InvalidParameterError("lat must be from -90 to 90")
    if not -180 <= lng <= 180:
        raise InvalidParameterError("lng must be from -180 to 180")


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """The great-circle distance between two places, in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Box:
    """Latitudes from `lat_min` to `lat_max`; longitudes in any of `lng_ranges` (None: all)."""

    lat_min: float
    lat_max: float
    lng_ranges: list[tuple[float, float]] | None


def bounding_box(lat: float, lng: float, radius_km: float) -> Box:
    """The smallest latitude/longitude box holding every place within `radius_km` of (lat, lng).

    Past a pole every longitude is in; a box across the antimeridian is two longitude ranges."""
    angle = radius_km / EARTH_RADIUS_KM  # the radius as an angle, in radians
    dlat = math.degrees(angle)
    lat_min, lat_max = lat - dlat, lat + dlat
    if lat_min <= -90 or lat_max >= 90:
        return Box(max(lat_min, -90.0), min(lat_max, 90.0), None)
    # The circle's widest longitude span is at the latitude where it touches its meridians.
    ratio = math.sin(angle) / math.cos(math.radians(lat))
    if ratio >= 1:
        return Box(lat_min, lat_max, None)
    dlng = math.degrees(math.asin(ratio))
    low, high = lng - dlng, lng + dlng
    if low < -180:
        return Box(lat_min, lat_max, [(low + 360, 180.0), (-180.0, high)])
    if high > 180:
        return Box(lat_min, lat_max, [(low, 180.0), (-180.0, high - 360)])
    return Box(lat_min, lat_max, [(low, high)])


@dataclass(frozen=True)
class RoomRow:
    thread: Thread
    member_count: int
    distance_km: float | None


def _listed() -> Q:
    return Q(kind=ThreadKind.ROOM, status=ThreadStatus.ACTIVE)


async def rooms_near(lat: float, lng: float, radius_km: float, limit: int) -> list[RoomRow]:
    """Active rooms with a place within `radius_km` of (lat, lng), nearest first."""
    check_place(lat, lng)
    box = bounding_box(lat, lng, radius_km)
    query = Thread.filter(_listed(), lat__gte=box.lat_min, lat__lte=box.lat_max)
    if box.lng_ranges is not None:
        query = query.filter(Q(*(Q(lng__gte=low, lng__lte=high) for low, high in box.lng_ranges),
                               join_type=Q.OR))
    # Distances from the places alone (three columns a room); member counts and whole rows only
    # for the `limit` nearest, so a huge radius costs a narrow scan, not a join per room.
    nearest = sorted(
        (round(distance, 3), str(room_id))
        for room_id, room_lat, room_lng in await query.values_list("id", "lat", "lng")
        if room_lat is not None and room_lng is not None  # inside a box; for the type checker
        and (distance := haversine_km(lat, lng, room_lat, room_lng)) <= radius_km
    )[:limit]
    threads = {t.id: t for t in await Thread.filter(id__in=[i for _, i in nearest]).annotate(
        member_count=Count("members")).group_by("id")}
    return [RoomRow(threads[i], _count_of(threads[i]), d) for d, i in nearest if i in threads]


async def rooms_by_members(limit: int) -> list[RoomRow]:
    """Active rooms, most members first (the newest first among equals)."""
    threads = await (Thread.filter(_listed()).annotate(member_count=Count("members"))
                     .group_by("id").order_by("-member_count", "-created_at").limit(limit))
    return [RoomRow(t, _count_of(t), None) for t in threads]


def _count_of(thread: Thread) -> int:
    return int(getattr(thread, "member_count", 0))
