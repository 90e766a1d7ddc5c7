"""Threads on the wire, as their members see them: the thread list, a thread's details (what
creating a thread answers too), its member list, and the thread list's query. Membership changes
are in contract/membership.py; a member's own settings (`MemberSettings`) in contract/http.py.

The events a membership change publishes (`event`, `thread_added`, `thread_removed`) are in
contract/events.py. Times here are ISO 8601 strings, as elsewhere in HTTP.
"""

from __future__ import annotations

from typing import Literal

from contract.events import TimelineEntry
from contract.http import Shape

ThreadType = Literal["direct", "group", "room"]
MemberRole = Literal["owner", "admin", "member"]
ThreadStatusName = Literal["active", "dissolved"]
# Whether the caller is in the thread now, or left it, or was removed from it.
MembershipName = Literal["active", "left", "removed"]


class ThreadListItem(Shape):
    """GET /api/threads: one per thread of the caller, pinned ones first, then newest activity,
    a page at a time: `?limit=` items (default 20, 1 to 200), and `?after=` the thread_id of the
    previous page's last item for the next page. A page shorter than `limit` is the last one.

    For a former thread (`membership` left or removed, listed with `?include_left=true`),
    `max_seq` and `read_seq` are the seq of their leaving, `role` is null, nothing is unread and
    the settings have their defaults. `muted_until` is the caller's own "no notifications until"
    (null once passed); `unread` and `unread_mentions` are 0 for a message request."""

    thread_id: str
    type: ThreadType
    name: str | None
    status: ThreadStatusName
    membership: MembershipName
    role: MemberRole | None  # the caller's; null in a former thread
    max_seq: int
    read_seq: int  # the caller's
    unread: int  # messages from others above the caller's read mark (that they may read)
    unread_mentions: int  # of those, the ones that mention the caller
    # The newest message or thread event they may read (never an action entry: a reaction, an
    # edit... leaves the last message in place), as stored (no reactions or status).
    last_message: TimelineEntry | None
    last_activity_at: str
    pinned: bool
    archived: bool
    marked_unread: bool
    muted_until: str | None
    recv_msg_opt: int  # 0 normal, 1 no notifications, 2 not delivered


class ThreadSettings(Shape):
    """A thread's own settings (changed by its owner or admins)."""

    history_visibility: Literal["joined", "shared"]
    join_approval: bool
    admins_only_send: bool
    visibility: Literal["private", "public"]


class Geo(Shape):
    lat: float
    lng: float


class Participant(Shape):
    """A current member. `muted_until`: muted by the owner or an admin (their sends are
    refused) until then; null when not muted, or once it passed."""

    user_id: str
    role: MemberRole
    nickname: str | None
    joined_at: str
    read_seq: int
    delivered_seq: int
    muted_until: str | None
    is_bot: bool = False  # a bot account (docs/bots.md)


class ThreadInfo(Shape):
    """GET /api/threads/{id}: a thread as its members see it."""

    thread_id: str
    type: ThreadType
    name: str | None
    owner_id: str | None  # a direct thread has none
    admin_ids: list[str]  # the admins besides the owner
    participants: list[Participant]  # longest-serving first
    max_seq: int
    created_at: str
    image_url: str | None
    color: str | None  # #RRGGBB
    emoji: str | None
    description: str | None
    status: ThreadStatusName
    settings: ThreadSettings
    nicknames: dict[str, str]  # user id -> nickname, for those who have one
    capacity: int | None  # rooms only
    geo: Geo | None  # rooms with a place only


class CreatedThread(ThreadInfo):
    """POST /api/threads: the thread; `created` is false for a direct thread that existed."""

    created: bool


class MemberView(Shape):
    """GET /api/threads/{id}/members: one per current member, longest-serving first."""

    user_id: str
    role: MemberRole
    nickname: str | None
    joined_at: str
    muted_until: str | None  # as in Participant
    is_bot: bool = False  # a bot account (docs/bots.md)
