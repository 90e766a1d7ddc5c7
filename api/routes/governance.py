"""Governing a thread: its looks and settings, dissolving or deleting it, admins, owner, mutes,
nicknames and announcements. Parse -> the use cases of actions/governance.py -> serialise.

Request bodies live here, beside the only routes that take them; the rules on their values are
the models' (models/governance.py), so a body only fixes the JSON types.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictStr
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from actions import governance
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import Body, parse_body

TARGETS_MAX = 1000


class ThreadPatchBody(Body):
    """PATCH /api/threads/{id}: an absent field stays, null clears a look field. `settings`
    is checked key by key by the models (unknown keys and null values are refused)."""

    name: StrictStr | None = None
    image_url: StrictStr | None = None
    color: StrictStr | None = None
    emoji: StrictStr | None = None
    description: StrictStr | None = None
    settings: dict[str, Any] | None = None

    def looks(self) -> dict[str, str | None]:
        fields = ("name", "image_url", "color", "emoji", "description")
        return {name: getattr(self, name) for name in fields if name in self.model_fields_set}


class UserIdsBody(Body):
    user_ids: list[StrictStr] = Field(min_length=1, max_length=TARGETS_MAX)


class OwnerBody(Body):
    user_id: StrictStr


class MuteBody(UserIdsBody):
    until: StrictStr | None = None  # ISO 8601 with a time zone; absent or null: until unmuted


class NicknameBody(Body):
    nickname: StrictStr | None  # required: null clears


class AnnouncementBody(Body):
    content: StrictStr


def _thread(request: Request) -> str:
    thread_id: str = request.path_params["thread_id"]
    return thread_id


def _user(request: Request) -> str:
    user_id: str = request.path_params["user_id"]
    return user_id


async def patch_thread(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, ThreadPatchBody)
    return ok(await governance.update_thread(state_of(request).ctx, caller.user_id,
                                             _thread(request), body.looks(), body.settings))


async def delete_thread(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await governance.end_thread(state_of(request).ctx, caller.user_id,
                                          _thread(request)))


async def add_admins(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, UserIdsBody)
    return ok(await governance.add_admins(state_of(request).ctx, caller.user_id,
                                          _thread(request), body.user_ids))


async def remove_admin(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await governance.remove_admin(state_of(request).ctx, caller.user_id,
                                            _thread(request), _user(request)))


async def transfer_owner(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, OwnerBody)
    return ok(await governance.transfer_owner(state_of(request).ctx, caller.user_id,
                                              _thread(request), body.user_id))


async def mute(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, MuteBody)
    return ok(await governance.mute(state_of(request).ctx, caller.user_id, _thread(request),
                                    body.user_ids, body.until))


async def unmute(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await governance.unmute(state_of(request).ctx, caller.user_id, _thread(request),
                                      _user(request)))


async def set_nickname(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, NicknameBody)
    return ok(await governance.set_nickname(state_of(request).ctx, caller.user_id,
                                            _thread(request), _user(request), body.nickname))


async def list_announcements(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await governance.announcements(caller.user_id, _thread(request)))


async def post_announcement(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, AnnouncementBody)
    result = await governance.post_announcement(state_of(request).ctx, caller.user_id,
                                                _thread(request), body.content)
    return ok(result, status=201)


async def remove_announcement(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await governance.remove_announcement(
        state_of(request).ctx, caller.user_id, _thread(request),
        request.path_params["announcement_id"]))


_T = "/api/threads/{thread_id:id}"
routes: list[BaseRoute] = [
    Route(_T, patch_thread, methods=["PATCH"]),
    Route(_T, delete_thread, methods=["DELETE"]),
    Route(f"{_T}/admins", add_admins, methods=["POST"]),
    Route(f"{_T}/admins/{{user_id:id}}", remove_admin, methods=["DELETE"]),
    Route(f"{_T}/owner", transfer_owner, methods=["POST"]),
    Route(f"{_T}/mutes", mute, methods=["POST"]),
    Route(f"{_T}/mutes/{{user_id:id}}", unmute, methods=["DELETE"]),
    Route(f"{_T}/nicknames/{{user_id:id}}", set_nickname, methods=["PUT"]),
    Route(f"{_T}/announcements", list_announcements, methods=["GET"]),
    Route(f"{_T}/announcements", post_announcement, methods=["POST"]),
    Route(f"{_T}/announcements/{{announcement_id:num}}", remove_announcement,
          methods=["DELETE"]),
]
