"""What changing a thread's members answers over HTTP (adding, removing, joining, deciding
invitations), and the `logMessageData` of the membership entries (`log:subscribe`,
`log:unsubscribe`) that a timeline `event` carries. Rooms are in contract/rooms.py."""

from __future__ import annotations

from typing import ClassVar, Literal

from contract.http import Shape

InvitationStatusName = Literal["pending", "approved", "rejected"]


class MembersAdded(Shape):
    """POST /api/threads/{id}/members: `seq` is that of the `log:subscribe` event. With
    `join_approval` on, a non-admin's add stores pending invitations instead: `added` is empty,
    `invited` names them, `seq` is null."""

    thread_id: str
    added: list[str]
    invited: list[str]
    seq: int | None


class MemberRemoved(Shape):
    """DELETE /api/threads/{id}/members/{user}: `seq` is that of the `log:unsubscribe` event
    (null when leaving a dissolved thread, which takes no more entries)."""

    thread_id: str
    removed: list[str]
    seq: int | None


class JoinResult(Shape):
    """POST /api/threads/{id}/join: joined at once (`seq` of the `log:subscribe` event), or a
    pending join request (`invitation_id`) when the thread wants approval."""

    thread_id: str
    joined: bool
    pending: bool
    seq: int | None
    invitation_id: int | None


class InvitationInfo(Shape):
    """One invitation (`inviter_id` null: the user asked to join), as the owner and admins list
    it. Times are ISO 8601."""

    invitation_id: int
    thread_id: str
    user_id: str
    inviter_id: str | None
    status: InvitationStatusName
    created_at: str
    decided_by: str | None
    decided_at: str | None


class InvitationDecided(InvitationInfo):
    """POST …/invitations/{iid}/approve or /reject: the invitation as decided; on approve, `seq`
    is that of the `log:subscribe` event that let the user in."""

    seq: int | None


# The `logMessageData` of membership entries, stored with the entry as they are sent.


class MembersJoinedLog(Shape):
    """Users joined: a group's or room's creation (creator first), members added, an invitation
    approved, or a user who joined by themselves."""

    log_type: ClassVar[str] = "log:subscribe"
    added_participants: list[str]


class MemberLeftLog(Shape):
    log_type: ClassVar[str] = "log:unsubscribe"
    left_participant_fbid: str  # the seed documents' field name, kept on the wire


class MemberRemovedLog(Shape):
    log_type: ClassVar[str] = "log:unsubscribe"
    removed_participant: str
