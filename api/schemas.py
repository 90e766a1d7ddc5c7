"""Request bodies, validated with pydantic; a bad body becomes InvalidParameterError (1001)."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.requests import Request

from contract.commands import MessageContent
from contract.errors import InvalidParameterError, PayloadTooLargeError
from contract.fields import INT_MAX, ClientMsgIdField, IdField
from contract.jsonin import decode_json
from contract.validation import validate

MAX_BODY_BYTES = 256 * 1024
T = TypeVar("T", bound=BaseModel)


class Body(BaseModel):
    """The base of request bodies: unknown fields ignored, frozen."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class RegisterBody(Body):
    name: StrictStr
    password: StrictStr
    user_id: StrictStr | None = None
    email: StrictStr | None = None
    phone: StrictStr | None = None
    # A platform name, or a seed platform id 1-5 (models/session.py).
    platform: StrictStr | StrictInt = "web"
    # An email verification code (POST /api/auth/verify-code).
    code: StrictStr | None = None


class LoginBody(Body):
    login: StrictStr
    password: StrictStr
    platform: StrictStr | StrictInt = "web"
    # Only to restore a deleted account when MQIM_REQUIRE_EMAIL_CODE is on.
    code: StrictStr | None = None


class RefreshBody(Body):
    refresh_token: StrictStr


class CreateThreadBody(Body):
    type: Literal["direct", "group"]
    user_ids: list[StrictStr] = Field(default_factory=list, max_length=5000)
    name: StrictStr | None = None


class AddMembersBody(Body):
    user_ids: list[StrictStr] = Field(min_length=1, max_length=5000)


class SendBody(Body, MessageContent):
    client_msg_id: ClientMsgIdField | None = None


class SendFormFields(Body):
    """The text parts of a multipart send (beside its `file`); `type` a name or an alias."""

    body: StrictStr | None = None
    client_msg_id: ClientMsgIdField | None = None
    type: StrictStr | None = None
    reply_to: IdField | None = None


class RuleBody(Body):
    topic: StrictStr
    access: StrictStr
    user_id: StrictStr | None = None


class ReadBody(Body):
    seq: StrictInt = Field(ge=0, le=INT_MAX)


class VerifyCodeBody(Body):
    email: StrictStr
    purpose: Literal["register", "change_email", "restore"]


class ProfileBody(Body):
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


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused with 413 (1012) as soon as it passes `limit`: a declared
    Content-Length is checked before reading, a chunked body while it streams in."""
    declared = request.headers.get("content-length", "")
    if len(declared) > 15 or (declared.isdigit() and int(declared) > limit):
        raise PayloadTooLargeError(f"request body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"request body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_body(request: Request, model: type[T]) -> T:
    raw = await read_body(request)
    return validate(model, decode_json(raw or b"{}", what="request body"))


def query_int(request: Request, name: str, *, default: int | None = None,
              minimum: int = 0, maximum: int = INT_MAX) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        # Bounded before int(): Python refuses to convert more than 4,300 digits anyway.
        number = int(value) if len(value) <= 20 else None
    except ValueError:
        number = None
    if number is None:
        raise InvalidParameterError(f"{name} must be an integer from {minimum} to {maximum}")
    if number < minimum or number > maximum:
        raise InvalidParameterError(f"{name} must be at least {minimum} and at most {maximum}")
    return number


class FriendRequestBody(Body):
    user_id: StrictStr
    message: StrictStr = ""


class UserRefBody(Body):
    user_id: StrictStr


class FriendGroupBody(Body):
    name: StrictStr


class FriendGroupMembersBody(Body):
    user_ids: list[StrictStr] = Field(min_length=1, max_length=1000)
