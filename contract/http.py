"""The shapes of HTTP responses (the `data` of the success envelope), and the envelopes.

Routes serialise these models, never hand-built dicts, so the JSON a client gets is what this
module says; they are also what the OpenAPI document will publish. Some are shared with MQTT:
the `ack` of an uplink command carries the same result as the matching route, and
`user_updated` carries a user.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Shape(BaseModel):
    """Base of every response shape: frozen, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorEnvelope(Shape):
    """Every HTTP error: `code` and `error` name it for programs, `msg` for people."""

    code: int
    msg: str
    error: str
    # Only on 1006 rate_limited: the seconds until a new attempt may pass.
    retry_after: int | None = Field(default=None, exclude_if=lambda value: value is None)


class OkEnvelope(Shape):
    """Every HTTP success: `data` is the route's shape."""

    code: Literal[0] = 0
    msg: Literal["ok"] = "ok"
    data: Any


class Health(Shape):
    """GET /health when the database answers."""

    status: Literal["ok"] = "ok"


class UserProfile(Shape):
    """A user as others see them: no email or phone; a deleted account as "Deleted user"."""

    id: str
    name: str
    avatar_url: str | None
    bio: str | None
    extra: Any
    created_at: str
    deleted: bool
    is_bot: bool = False  # a bot account (docs/bots.md)


class UserSelf(Shape):
    """The owner's own view (GET /api/me, the login bundle): with email and phone."""

    id: str
    name: str
    email: str | None
    phone: str | None
    avatar_url: str | None
    bio: str | None
    extra: Any
    email_verified_at: str | None
    created_at: str
    is_bot: bool = False  # a bot account (docs/bots.md)


class SendResult(Shape):
    """POST …/messages and the `send` op's ack: where the message was stored."""

    message_id: str
    seq: int
    thread_id: str
    client_msg_id: str | None
    duplicate: bool


class ReadResult(Shape):
    """POST …/read and the `read` op's ack: the reader's read mark after the command."""

    thread_id: str
    read_seq: int


class PresenceResult(Shape):
    """The `presence` op's ack."""

    status: str


class ThreadCounts(Shape):
    """GET /api/sync: one per thread of the caller, newest activity first."""

    thread_id: str
    max_seq: int
    read_seq: int
    unread: int


class PresenceView(Shape):
    """GET /api/users/{id}/presence."""

    user_id: str
    status: str
    last_seen_at: int | None


class MemberSettings(Shape):
    """A member's own settings of a thread (PATCH /api/threads/{id}/settings answers them, and
    the `thread_settings` event carries them, times as in HTTP: ISO 8601). `muted_until`: no
    notifications until then; `recv_msg_opt` 0 normal, 1 no notifications, 2 not delivered."""

    pinned: bool
    archived: bool
    marked_unread: bool
    muted_until: str | None
    recv_msg_opt: int


class WebAppConfig(Shape):
    """GET /app/config.json. `mqtt_ws_url` is null when the WebSocket listener is off. A host of
    127.0.0.1, localhost, 0.0.0.0 or :: means "this machine": the page puts its own hostname
    there, so the same answer works from the machine itself and from across a network."""

    mqtt_ws_url: str | None
