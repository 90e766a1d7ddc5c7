"""Reading a thread's timeline: `GET …/messages` (docs/messages.md). Messages come in their
current state: the latest edit, reactions, reply count, and for the caller's own, `status`."""

from __future__ import annotations

from actions.timeline import entry_event
from contract.events import TimelineEvent
from models.message import get_history


async def history(
    user_id: str, thread_id: str, *, after_seq: int | None, before_seq: int | None, limit: int,
) -> list[TimelineEvent]:
    """A member's view of a thread's timeline, oldest first (see models.message.get_history)."""
    entries = await get_history(user_id, thread_id, after_seq=after_seq, before_seq=before_seq,
                                limit=limit)
    return [entry_event(e) for e in entries]
