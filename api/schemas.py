"""Request bodies, validated with pydantic; a bad body becomes InvalidParameterError (1001)."""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.requests import Request

from models.errors import InvalidParameterError
from models.message import MessageContent
from models.validation import validate

MAX_BODY_BYTES = 256 * 1024
T = TypeVar("T", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RegisterBody(_Body):
    name: StrictStr
    password: StrictStr
    user_id: StrictStr | None = None
    email: StrictStr | None = None
    phone: StrictStr | None = None
    # A platform name, or a seed platform id 1-5 (models/session.py).
    platform: StrictStr | StrictInt = "web"
    # An email verification code (POST /api/auth/verify-code).
    code: StrictStr | None = None


class LoginBody(_Body):
    login: StrictStr
    password: StrictStr
    platform: StrictStr | StrictInt = "web"
    # Only to restore a deleted account when MQIM_REQUIRE_EMAIL_CODE is on.
    code: StrictStr | None = None


class RefreshBody(_Body):
    refresh_token: StrictStr


class CreateThreadBody(_Body):
    type: Literal["direct", "group"]
    user_ids: list[StrictStr] = Field(default_factory=list, max_length=5000)
    name: StrictStr | None = None


class AddMembersBody(_Body):
    user_ids: list[StrictStr] = Field(min_length=1, max_length=5000)


class SendBody(_Body, MessageContent):
    client_msg_id: StrictStr | None = None


class RuleBody(_Body):
    topic: StrictStr
    access: StrictStr
    user_id: StrictStr | None = None


class ReadBody(_Body):
    seq: StrictInt = Field(ge=0)


class VerifyCodeBody(_Body):
    email: StrictStr
    purpose: Literal["register", "change_email", "restore"]


class ProfileBody(_Body):
    """PATCH /api/me: an absent field stays, null clears it (avatar_url, bio, extra, email)."""

    name: StrictStr | None = None
    avatar_url: StrictStr | None = None
    bio: StrictStr | None = None
    extra: dict[str, Any] | None = None
    email: StrictStr | None = None
    password: StrictStr | None = None
    current_password: StrictStr | None = None
    code: StrictStr | None = None

    def changes(self) -> dict[str, Any]:
        """The profile fields the client sent, with their values."""
        editable = ("name", "avatar_url", "bio", "extra", "email", "password")
        return {name: getattr(self, name) for name in editable if name in self.model_fields_set}


async def parse_body(request: Request, model: type[T]) -> T:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidParameterError(f"request body is over {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidParameterError(f"request body is not JSON: {exc}") from exc
    return validate(model, data)


def query_int(request: Request, name: str, *, default: int | None = None,
              minimum: int = 0, maximum: int | None = None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise InvalidParameterError(f"{name} must be an integer") from exc
    if number < minimum or (maximum is not None and number > maximum):
        bound = f" and at most {maximum}" if maximum is not None else ""
        raise InvalidParameterError(f"{name} must be at least {minimum}{bound}")
    return number


class FriendRequestBody(_Body):
    user_id: StrictStr
    message: StrictStr = ""


class UserRefBody(_Body):
    user_id: StrictStr


class FriendGroupBody(_Body):
    name: StrictStr


class FriendGroupMembersBody(_Body):
    user_ids: list[StrictStr] = Field(min_length=1, max_length=1000)
