"""Finding chat rooms: `GET /api/rooms?near=LAT,LNG&radius_km=R&limit=N`. Parse ->
actions/membership.py -> serialise. Creating a room is `POST /api/threads` (api/routes/threads.py)
and joining one `POST /api/threads/{id}/join`."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from actions import membership
from api.auth import authenticate
from api.envelope import ok
from api.schemas import query_int
from contract.errors import InvalidParameterError
from models.rooms import RADIUS_KM_DEFAULT, RADIUS_KM_MAX, ROOMS_LIMIT_DEFAULT, ROOMS_LIMIT_MAX


def _number(text: str, name: str) -> float:
    try:
        value = float(text) if len(text) <= 32 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidParameterError(f"{name} must be a number")
    return value


def _near(request: Request) -> tuple[float, float] | None:
    text = request.query_params.get("near")
    if not text:
        return None
    lat, sep, lng = text.partition(",")
    if not sep:
        raise InvalidParameterError("near must be LAT,LNG")
    return _number(lat.strip(), "near's latitude"), _number(lng.strip(), "near's longitude")


def _radius(request: Request) -> float:
    text = request.query_params.get("radius_km")
    if not text:
        return RADIUS_KM_DEFAULT
    radius = _number(text, "radius_km")
    if not 0 < radius <= RADIUS_KM_MAX:
        raise InvalidParameterError(f"radius_km must be above 0 and at most {RADIUS_KM_MAX:g}")
    return radius


async def index(request: Request) -> JSONResponse:
    await authenticate(request)
    limit = query_int(request, "limit", default=ROOMS_LIMIT_DEFAULT, minimum=1,
                      maximum=ROOMS_LIMIT_MAX) or ROOMS_LIMIT_DEFAULT
    return ok(await membership.list_rooms(_near(request), _radius(request), limit))


routes: list[BaseRoute] = [
    Route("/api/rooms", index, methods=["GET"]),
]
