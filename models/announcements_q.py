"""Group notices: members read them, the owner and admins post and remove them, each change a
timeline entry (docs/design.md section 8). The table is models/announcement.py; the transaction
and its checks are models.governance.governing.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.errors import InvalidParameterError, NotFoundError
from contract.governance import AnnouncementLog, AnnouncementRemovedLog
from models.announcement import ANNOUNCEMENT_MAX_CHARS, Announcement
from models.governance import governing
from models.message import Message
from models.thread import check_member, require_admin
from models.user import TEXT_CONTROLS, check_text

LIST_MAX = 200  # the newest ones; a group has a handful


def check_content(content: str) -> str:
    if not content.strip() or len(content) > ANNOUNCEMENT_MAX_CHARS:
        raise InvalidParameterError(f"content must be 1 to {ANNOUNCEMENT_MAX_CHARS} characters")
    return check_text(content, "content", TEXT_CONTROLS)


async def list_announcements(viewer_id: str, thread_id: str) -> list[Announcement]:
    """A thread's notices, newest first, for its current members (3001, 3003 otherwise)."""
    await check_member(thread_id, viewer_id)
    return list(await Announcement.filter(thread_id=thread_id).order_by("-id").limit(LIST_MAX))


@dataclass(frozen=True)
class Posted:
    announcement: Announcement
    entry: Message


async def post_announcement(actor_id: str, thread_id: str, content: str) -> Posted:
    content = check_content(content)
    async with governing(thread_id, actor_id) as g:
        g.require_group("announcements")
        require_admin(g.actor)
        notice = await Announcement.create(thread_id=thread_id, author_id=actor_id,
                                           content=content, using_db=g.conn)
        entry = await g.log(AnnouncementLog(announcement_id=notice.id, content=content),
                            f"{actor_id} posted an announcement")
    return Posted(notice, entry)


async def remove_announcement(actor_id: str, thread_id: str, announcement_id: int) -> Message:
    async with governing(thread_id, actor_id) as g:
        require_admin(g.actor)
        removed = await Announcement.filter(id=announcement_id, thread_id=thread_id).using_db(
            g.conn).delete()
        if not removed:
            raise NotFoundError(f"announcement {announcement_id} not found in this thread")
        return await g.log(AnnouncementRemovedLog(announcement_id=announcement_id),
                           f"{actor_id} removed an announcement")
