"""What changing a thread's members answers over HTTP, and the `logMessageData` of the
membership entries (`log:subscribe`, `log:unsubscribe`) that a timeline `event` carries."""

from __future__ import annotations

from typing import ClassVar

from contract.http import Shape


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
