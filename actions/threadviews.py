"""What a member sees of their threads: the thread list and one thread's details."""

from __future__ import annotations

from actions.timeline import entry_event
from contract.threads import Participant, ThreadInfo, ThreadListItem
from models.readstate import list_threads
from models.thread import Role, Roster, get_roster


async def threads_of(user_id: str) -> list[ThreadListItem]:
    """The user's threads, newest activity first."""
    return [
        ThreadListItem(
            thread_id=t.member.thread.id, type=t.member.thread.kind.value,
            name=t.member.thread.name, role=t.member.role.value,
            max_seq=t.member.thread.last_seq, read_seq=t.member.read_seq, unread=t.unread,
            last_message=entry_event(t.last_entry) if t.last_entry else None,
            last_activity_at=t.member.thread.last_activity_at.isoformat(),
        )
        for t in await list_threads(user_id)
    ]


async def thread_info(user_id: str, thread_id: str) -> ThreadInfo:
    """A thread as its members see it (ThreadNotFoundError or NotAMemberError to others)."""
    return info_of(await get_roster(thread_id, user_id))


def info_of(roster: Roster) -> ThreadInfo:
    thread, members = roster.thread, roster.members
    return ThreadInfo(
        thread_id=thread.id, type=thread.kind.value, name=thread.name, owner_id=thread.owner_id,
        admin_ids=[m.user_id for m in members if m.role == Role.ADMIN],
        participants=[Participant(user_id=m.user_id, role=m.role.value, read_seq=m.read_seq)
                      for m in members],
        max_seq=thread.last_seq, created_at=thread.created_at.isoformat(),
    )
