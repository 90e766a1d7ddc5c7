"""Threads on the wire, as their members see them: the thread list and a thread's details
(what creating a thread answers too). Membership changes are in contract/membership.py.

The events a membership change publishes (`event`, `thread_added`, `thread_removed`) are in
contract/events.py. Times here are ISO 8601 strings, as elsewhere in HTTP.
"""

from __future__ import annotations

from typing import Literal

from contract.events import TimelineEntry
from contract.http import Shape

ThreadType = Literal["direct", "group", "room"]
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
