"""Threads on the wire: the thread routes' responses (the thread list, a thread's details, what
creating a thread or changing its members answers), and the `logMessageData` of the membership
entries (`log:subscribe`, `log:unsubscribe`) that a timeline `event` carries.

The events a membership change publishes (`event`, `thread_added`, `thread_removed`) are in
contract/events.py. Times here are ISO 8601 strings, as elsewhere in HTTP.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from contract.events import TimelineEntry
from contract.http import Shape

ThreadType = Literal["direct", "group"]
MemberRole = Literal["owner", "admin", "member"]


class ThreadListItem(Shape):
    """GET /api/threads: one per thread of the caller, newest activity first."""

    thread_id: str
    type: ThreadType
    name: str | None
    role: MemberRole  # the caller's
    max_seq: int
    read_seq: int  # the caller's
    unread: int  # messages from others above the caller's read mark
    last_message: TimelineEntry | None  # the newest timeline entry, message or event
    last_activity_at: str


class Participant(Shape):
    user_id: str
    role: MemberRole
    read_seq: int


class ThreadInfo(Shape):
    """GET /api/threads/{id}: a thread as its members see it."""

    thread_id: str
    type: ThreadType
    name: str | None
    owner_id: str | None  # a direct thread has none
    admin_ids: list[str]
    participants: list[Participant]  # longest-serving first
    max_seq: int
    created_at: str


class CreatedThread(ThreadInfo):
    """POST /api/threads: the thread; `created` is false for a direct thread that existed."""

    created: bool


class MembersAdded(Shape):
    """POST /api/threads/{id}/members: `seq` is that of the `log:subscribe` event."""

    thread_id: str
    added: list[str]
    seq: int | None


class MemberRemoved(Shape):
    """DELETE /api/threads/{id}/members/{user}: `seq` is that of the `log:unsubscribe` event."""

    thread_id: str
    removed: list[str]
    seq: int | None


# The `logMessageData` of membership entries, stored with the entry as they are sent.


class MembersJoinedLog(Shape):
    """Users joined a group: its creation (creator first) or members added."""

    log_type: ClassVar[str] = "log:subscribe"
    added_participants: list[str]


class MemberLeftLog(Shape):
    log_type: ClassVar[str] = "log:unsubscribe"
    left_participant_fbid: str  # the seed documents' field name, kept on the wire


class MemberRemovedLog(Shape):
    log_type: ClassVar[str] = "log:unsubscribe"
    removed_participant: str
