"""The shapes of the HTTP responses about accounts, login sessions, users and their
administration (the `data` of the success envelope).

Signing in (register, login) answers with a `SignedIn` bundle: the access and refresh tokens,
the owner's own view of the user, and the credentials to connect to the MQTT broker; refreshing
answers with the same bundle without `restored`. The user shapes themselves (`UserSelf`,
`UserProfile`) are in `contract/http.py`, shared with the `user_updated` event. Times are ISO
8601 strings here, as in the user shapes.
"""

from __future__ import annotations

from typing import Literal

from contract.http import Shape, UserProfile, UserSelf
from contract.social import FriendGroupRef


class MqttCredentials(Shape):
    """How the device connects to the broker: the access token is the MQTT password."""

    username: str
    password: str
    client_id: str
    topic_prefix: str


class TokenBundle(Shape):
    """POST /api/auth/refresh: a new access token and the rotated refresh token."""

    token: str
    expires_in: int  # seconds the access token lives
    refresh_token: str
    session_id: str
    user: UserSelf
    mqtt: MqttCredentials


class SignedIn(TokenBundle):
    """POST /api/auth/register and /api/auth/login."""

    # True when the request brought a deleted account back (then 200, even for register).
    restored: bool


class CodeSent(Shape):
    """POST /api/auth/verify-code: where the code went; never the code itself."""

    email: str
    purpose: str
    expires_in: int
    resend_after: int


class SessionView(Shape):
    """GET /api/me/sessions: one live login session of the caller, oldest first."""

    id: str
    platform: str
    created_at: str
    refreshed_at: str | None
    expires_at: str
    current: bool  # the session of the token that asked


class SessionEnded(Shape):
    """DELETE /api/me/sessions/{id}."""

    id: str
    ended: Literal[True]


class AccountDeleted(Shape):
    """DELETE /api/me: the account is restorable (by logging in) until `restore_until`."""

    id: str
    deleted: Literal[True]
    restore_until: str


class UserFound(UserProfile):
    """GET /api/users: one match."""

    is_friend: bool


class UserPage(Shape):
    """GET /api/users: one page of matches, exact matches (id, email) first."""

    items: list[UserFound]
    page: int
    page_size: int
    total: int


class UserView(UserProfile):
    """GET /api/users/{id}: a user as the caller sees them."""

    is_friend: bool
    blocked: bool  # the caller blocked them (never whether they blocked the caller)
    friend_groups: list[FriendGroupRef]  # the caller's groups they are in, oldest first


class BanStatus(Shape):
    """DELETE /api/admin/users/{id}/ban."""

    user_id: str
    banned: bool


class BanResult(BanStatus):
    """POST /api/admin/users/{id}/ban: with the number of login sessions it ended."""

    sessions_ended: int


class AclRuleView(Shape):
    """An extra broker ACL rule (GET and POST /api/admin/acl/rules)."""

    id: int
    topic: str
    access: str  # read, write or readwrite
    user_id: str | None  # None: every user
    created_by: str | None
    created_at: str


class RuleDeleted(Shape):
    """DELETE /api/admin/acl/rules/{id}."""

    id: int
    deleted: Literal[True]


class AclLine(Shape):
    """GET /api/admin/users/{id}/acl (and `mqim acl show`): one topic filter the user may use,
    and why."""

    topic: str
    access: str  # read, write, readwrite, or none (a rule the fixed rules void)
    source: str
