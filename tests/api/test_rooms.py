"""Chat rooms over real HTTP on both stacks: creating one (capacity, place), joining it up to its
capacity (also two users racing for the last place), and finding rooms near a place or by size."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_joining import post
from tests.helpers import Account, create_group, register, unique_id, whole_timeline


async def create_room(http: httpx.AsyncClient, owner: Account, capacity: int = 10,
                      geo: tuple[float, float] | None = None, name: str | None = None) -> str:
    body: dict[str, Any] = {"type": "room", "name": name or unique_id("room-"),
                            "capacity": capacity}
    if geo is not None:
        body["geo"] = {"lat": geo[0], "lng": geo[1]}
    response = await http.post("/api/threads", headers=owner.auth, json=body)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert (data["type"], data["owner_id"], data["created"]) == ("room", owner.user_id, True)
    thread_id: str = data["thread_id"]
    return thread_id


async def rooms(http: httpx.AsyncClient, viewer: Account, **params: Any) -> list[dict[str, Any]]:
    response = await http.get("/api/rooms", headers=viewer.auth, params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def somewhere() -> tuple[float, float]:
    """A random place away from the poles and the antimeridian, so that tests sharing a stack
    do not find each other's rooms."""
    return round(random.uniform(-60, 60), 4), round(random.uniform(-170, 170), 4)


async def test_creating_a_room_checks_capacity_and_place(http: httpx.AsyncClient) -> None:
    owner, bob = await register(http), await register(http)
    base: dict[str, Any] = {"type": "room", "name": "r", "capacity": 5}
    for changes in (
        {"capacity": None}, {"capacity": 1}, {"capacity": 5001}, {"capacity": "5"},
        {"capacity": True}, {"capacity": 2.5}, {"name": None}, {"name": " "},
        {"user_ids": [bob.user_id]}, {"geo": {"lat": 90.5, "lng": 0}},
        {"geo": {"lat": 0, "lng": -180.01}}, {"geo": {"lat": "1", "lng": 2}},
        {"geo": {"lat": 1}}, {"geo": [1, 2]}, {"type": "group", "geo": {"lat": 1, "lng": 2}},
        {"type": "group"},  # a group has no capacity
    ):
        body = {k: v for k, v in {**base, **changes}.items() if v is not None}
        assert_error(await http.post("/api/threads", headers=owner.auth, json=body),
                     400, 1001, "invalid_parameter")
    for capacity, geo in ((2, None), (5000, (-90.0, 180.0)), (3, (12, -45))):
        thread_id = await create_room(http, owner, capacity, geo)
        info = (await http.get(f"/api/threads/{thread_id}", headers=owner.auth)).json()["data"]
        assert [(p["user_id"], p["role"]) for p in info["participants"]] == [
            (owner.user_id, "owner")]
        [entry] = await whole_timeline(http, owner, thread_id)
        assert entry["logMessageData"] == {"added_participants": [owner.user_id]}


async def test_a_room_is_full_at_its_capacity(http: httpx.AsyncClient) -> None:
    owner, bob, carol = [await register(http) for _ in range(3)]
    thread_id = await create_room(http, owner, capacity=2)  # the creator counts
    joined = await post(http, f"/api/threads/{thread_id}/join", bob)
    assert (joined["joined"], joined["seq"]) == (True, 2)
    assert_error(await http.post(f"/api/threads/{thread_id}/join", headers=carol.auth),
                 409, 3011, "room_full")
    assert_error(await http.post(f"/api/threads/{thread_id}/members", headers=owner.auth,
                                 json={"user_ids": [carol.user_id]}), 409, 3011, "room_full")
    left = await http.delete(f"/api/threads/{thread_id}/members/{bob.user_id}", headers=bob.auth)
    assert left.is_success
    assert (await post(http, f"/api/threads/{thread_id}/join", carol))["seq"] == 4
    await whole_timeline(http, owner, thread_id)  # gapless: no seq taken by the refusals


async def test_approving_into_a_full_room_is_refused(http: httpx.AsyncClient) -> None:
    owner, bob, carol = [await register(http) for _ in range(3)]
    thread_id = await create_room(http, owner, capacity=2)
    patched = await http.patch(f"/api/threads/{thread_id}", headers=owner.auth,
                               json={"settings": {"join_approval": True}})
    assert patched.status_code == 200, patched.text
    asked = [await post(http, f"/api/threads/{thread_id}/join", a) for a in (bob, carol)]
    assert [a["pending"] for a in asked] == [True, True]
    invitations = f"/api/threads/{thread_id}/invitations"
    await post(http, f"{invitations}/{asked[0]['invitation_id']}/approve", owner)
    assert_error(await http.post(f"{invitations}/{asked[1]['invitation_id']}/approve",
                                 headers=owner.auth), 409, 3011, "room_full")
    pending = (await http.get(invitations, headers=owner.auth,
                              params={"status": "pending"})).json()["data"]
    assert [i["user_id"] for i in pending] == [carol.user_id]  # still waiting


async def test_two_users_racing_for_the_last_place(http: httpx.AsyncClient) -> None:
    owner = await register(http)
    for _ in range(3):
        thread_id = await create_room(http, owner, capacity=2)
        racers = [await register(http) for _ in range(2)]
        answers = await asyncio.gather(*(
            http.post(f"/api/threads/{thread_id}/join", headers=r.auth) for r in racers))
        assert sorted(a.status_code for a in answers) == [200, 409]
        [loser] = [a for a in answers if a.status_code == 409]
        assert_error(loser, 409, 3011, "room_full")
        info = (await http.get(f"/api/threads/{thread_id}", headers=owner.auth)).json()["data"]
        assert len(info["participants"]) == 2
        assert len(await whole_timeline(http, owner, thread_id)) == 2


async def test_rooms_near_a_place_nearest_first(http: httpx.AsyncClient) -> None:
    owner, viewer = await register(http), await register(http)
    lat, lng = somewhere()
    # About 0, 11, 33 and 111 km north of the place (a degree of latitude is 111.2 km).
    ids = [await create_room(http, owner, geo=(lat + d, lng)) for d in (0.0, 0.1, 0.3, 1.0)]
    await create_room(http, owner)  # no place: never listed near one
    await post(http, f"/api/threads/{ids[2]}/join", viewer)
    near = await rooms(http, viewer, near=f"{lat},{lng}")  # radius 50 km by default
    assert [r["thread_id"] for r in near] == ids[:3]
    assert [round(r["distance_km"]) for r in near] == [0, 11, 33]
    assert near[2] == {"thread_id": ids[2], "name": near[2]["name"], "member_count": 2,
                       "capacity": 10, "geo": {"lat": lat + 0.3, "lng": lng},
                       "distance_km": near[2]["distance_km"]}
    wide = await rooms(http, viewer, near=f"{lat},{lng}", radius_km=200)
    assert [r["thread_id"] for r in wide][:4] == ids
    assert [r["thread_id"] for r in await rooms(http, viewer, near=f"{lat},{lng}",
                                                 radius_km="20.5", limit=1)] == ids[:1]
    # A dissolved room is not listed.
    assert (await http.delete(f"/api/threads/{ids[0]}", headers=owner.auth)).is_success
    assert [r["thread_id"] for r in await rooms(http, viewer, near=f"{lat},{lng}")] == ids[1:3]


async def test_rooms_across_the_antimeridian_and_near_a_pole(http: httpx.AsyncClient) -> None:
    owner = await register(http)
    lat = round(random.uniform(-50, 50), 4)
    east = await create_room(http, owner, geo=(lat, 179.95))
    west = await create_room(http, owner, geo=(lat, -179.95))
    found = await rooms(http, owner, near=f"{lat},180", radius_km=10)
    assert {r["thread_id"] for r in found} >= {east, west}
    polar = await create_room(http, owner, geo=(89.95, 120.0))
    found = await rooms(http, owner, near="89.95,-60", radius_km=15)  # across the pole: 11 km
    assert polar in [r["thread_id"] for r in found]


async def test_rooms_without_a_place_by_most_members(http: httpx.AsyncClient) -> None:
    owner, bob, carol = [await register(http) for _ in range(3)]
    small = await create_room(http, owner)
    big = await create_room(http, owner)
    for account in (bob, carol):
        await post(http, f"/api/threads/{big}/join", account)
    group = await create_group(http, owner, bob)
    listed = await rooms(http, owner, limit=200)
    ids = [r["thread_id"] for r in listed]
    assert group not in ids
    assert ids.index(big) < ids.index(small)
    counts = [r["member_count"] for r in listed]
    assert counts == sorted(counts, reverse=True)
    assert all(r["distance_km"] is None for r in listed)
    assert {r["thread_id"]: r["member_count"] for r in listed}[big] == 3


async def test_rooms_query_is_checked(http: httpx.AsyncClient) -> None:
    viewer = await register(http)
    for params in ({"near": "abc"}, {"near": "10"}, {"near": "91,0"}, {"near": "0,181"},
                   {"near": "nan,0"}, {"near": "0,inf"}, {"near": "1,2", "radius_km": "0"},
                   {"near": "1,2", "radius_km": "20001"}, {"near": "1,2", "radius_km": "x"},
                   {"limit": "0"}, {"limit": "201"}):
        assert_error(await http.get("/api/rooms", headers=viewer.auth, params=params),
                     400, 1001, "invalid_parameter")
    assert_error(await http.get("/api/rooms"), 401, 2001, "token_invalid")
