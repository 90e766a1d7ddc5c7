"""What governing a thread answers over HTTP (its looks and settings, admins, owner, mutes,
nicknames, announcements, dissolving or deleting it), and the `logMessageData` of the timeline
entries each change writes (docs/design.md section 8).

Each log shape names its `logMessageType` in `log_type`; `log_data` is what the entry stores and
the `event` carries. Times are ISO 8601 strings, as elsewhere in HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from contract.http import Shape
from contract.threads import ThreadSettings

# HTTP answers.


class ThreadUpdated(Shape):
    """PATCH /api/threads/{id}: the thread's looks and settings after the change, and the seqs
    of the entries it wrote (one per changed field, one for all changed settings; [] when
    nothing changed)."""

    thread_id: str
    name: str | None
    image_url: str | None
    color: str | None
    emoji: str | None
    description: str | None
    settings: ThreadSettings
    seqs: list[int]


class ThreadEnded(Shape):
    """DELETE /api/threads/{id}: a group or room is `dissolved` (`seq` of `log:thread-dissolved`);
    a direct thread is `deleted` with its history (`seq` None)."""

    thread_id: str
    status: Literal["dissolved", "deleted"]
    seq: int | None


class AdminsChanged(Shape):
    """POST …/admins and DELETE …/admins/{uid}: `seq` None when nothing changed."""

    thread_id: str
    added: list[str]
    removed: list[str]
    admin_ids: list[str]  # every admin after the change, the owner not included
    seq: int | None


class OwnerChanged(Shape):
    """POST …/owner: the new owner; the previous one is now an admin."""

    thread_id: str
    owner_id: str
    previous_owner_id: str
    seq: int


class Mute(Shape):
    """`until` None: muted until unmuted."""

    user_id: str
    until: str | None


class MutesChanged(Shape):
    """POST …/mutes: every user named and their mute; `seqs` of the `log:user-muted` entries
    written (a user already muted until the same moment writes none)."""

    thread_id: str
    muted: list[Mute]
    seqs: list[int]


class Unmuted(Shape):
    """DELETE …/mutes/{uid}: `seq` None when the user was not muted."""

    thread_id: str
    user_id: str
    seq: int | None


class NicknameSet(Shape):
    """PUT …/nicknames/{uid}: `seq` None when the nickname did not change."""

    thread_id: str
    user_id: str
    nickname: str | None
    seq: int | None


class Announcement(Shape):
    """A group notice (GET …/announcements lists them newest first)."""

    announcement_id: int
    thread_id: str
    author_id: str | None
    content: str
    created_at: str


class AnnouncementPosted(Announcement):
    """POST …/announcements: the notice and the seq of its `log:announcement` entry."""

    seq: int


class AnnouncementRemoved(Shape):
    """DELETE …/announcements/{aid}."""

    thread_id: str
    announcement_id: int
    seq: int


# The `logMessageData` of governance entries, stored with the entry as they are sent.


class _Log(Shape):
    log_type: ClassVar[str]

    def log_data(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


class ThreadNameLog(_Log):
    log_type: ClassVar[str] = "log:thread-name"
    name: str | None


class ThreadIconLog(_Log):
    log_type: ClassVar[str] = "log:thread-icon"
    image_url: str | None


class ThreadColorLog(_Log):
    log_type: ClassVar[str] = "log:thread-color"
    color: str | None


class ThreadEmojiLog(_Log):
    log_type: ClassVar[str] = "log:thread-emoji"
    emoji: str | None


class ThreadDescriptionLog(_Log):
    log_type: ClassVar[str] = "log:thread-description"
    description: str | None


class ThreadSettingsLog(_Log):
    """Only the settings one PATCH changed, each with its new value."""

    log_type: ClassVar[str] = "log:thread-settings"
    history_visibility: Literal["joined", "shared"] | None = None
    join_approval: bool | None = None
    admins_only_send: bool | None = None
    visibility: Literal["private", "public"] | None = None

    def log_data(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class ThreadDissolvedLog(_Log):
    log_type: ClassVar[str] = "log:thread-dissolved"


class AdminsAddedLog(_Log):
    log_type: ClassVar[str] = "log:thread-admins"
    added: list[str]


class AdminsRemovedLog(_Log):
    log_type: ClassVar[str] = "log:thread-admins"
    removed: list[str]


class OwnerLog(_Log):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True)
    log_type: ClassVar[str] = "log:thread-owner"
    from_: str = Field(alias="from")
    to: str


class UserMutedLog(_Log):
    """`until` None: until unmuted."""

    log_type: ClassVar[str] = "log:user-muted"
    user_id: str
    until: str | None


class UserUnmutedLog(_Log):
    log_type: ClassVar[str] = "log:user-unmuted"
    user_id: str


class NicknameLog(_Log):
    log_type: ClassVar[str] = "log:user-nickname"
    participant_id: str
    nickname: str | None


class AnnouncementLog(_Log):
    log_type: ClassVar[str] = "log:announcement"
    announcement_id: int
    content: str


class AnnouncementRemovedLog(_Log):
    log_type: ClassVar[str] = "log:announcement-removed"
    announcement_id: int


GovernanceLog = (ThreadNameLog | ThreadIconLog | ThreadColorLog | ThreadEmojiLog
                 | ThreadDescriptionLog | ThreadSettingsLog | ThreadDissolvedLog | AdminsAddedLog
                 | AdminsRemovedLog | OwnerLog | UserMutedLog | UserUnmutedLog | NicknameLog
                 | AnnouncementLog | AnnouncementRemovedLog)
