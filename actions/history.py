"""Reading a thread's timeline: `GET …/messages`, one entry, the replies to a message
(docs/messages.md). Messages come in their current state: the latest edit and unsend (on the row
itself), their reactions and reply count, and for the caller's own, `status`; all three read for
a whole page in one statement (models/msgstate.py)."""

from __future__ import annotations

from typing import Any

from actions.timeline import entry_event
from contract.events import MessageEvent, TimelineEvent
from models.message import (
    HISTORY_LIMIT_DEFAULT,
    EntryKind,
    HistoryPage,
    get_entry,
    get_history,
    get_replies,
)
from models.msgstate import page_state


async def history(
    user_id: str, thread_id: str, *, after_seq: int | None, before_seq: int | None, limit: int,
    after_id: str | None = None, before_id: str | None = None,
) -> list[TimelineEvent]:
    """A member's view of a thread's timeline, oldest first (see models.message.get_history)."""
    page = await get_history(user_id, thread_id, after_seq=after_seq, before_seq=before_seq,
                             limit=limit, after_id=after_id, before_id=before_id)
    return await _current(user_id, thread_id, page)


async def entry(user_id: str, thread_id: str, entry_id: str) -> TimelineEvent:
    """One entry of the thread in its current state (4001 outside what the caller may read)."""
    page = await get_entry(user_id, thread_id, entry_id)
    return (await _current(user_id, thread_id, page))[0]


async def replies(
    user_id: str, thread_id: str, message_id: str, *, after_seq: int | None = None,
    before_seq: int | None = None, limit: int = HISTORY_LIMIT_DEFAULT,
) -> list[TimelineEvent]:
    """The replies to a message, oldest first, in their current state."""
    page = await get_replies(user_id, thread_id, message_id, after_seq=after_seq,
                             before_seq=before_seq, limit=limit)
    return await _current(user_id, thread_id, page)


async def _current(user_id: str, thread_id: str, page: HistoryPage) -> list[TimelineEvent]:
    """The page's entries as the contract shows them, messages with their current state."""
    messages = [e for e in page.entries if e.kind == EntryKind.MESSAGE]
    if not messages:
        return [entry_event(e) for e in page.entries]
    own = any(m.sender_id == user_id for m in messages)
    state = await page_state(thread_id, user_id, [m.id for m in messages],
                             high=page.visible.high, own=own)
    events: list[TimelineEvent] = []
    for e in page.entries:
        event = entry_event(e)
        if isinstance(event, MessageEvent):
            update: dict[str, Any] = {"reactions": state.reactions.get(e.id, {}),
                                      "reply_count": state.reply_counts.get(e.id, 0)}
            if e.sender_id == user_id:
                update["status"] = state.status(e.seq)
            event = event.model_copy(update=update)
        events.append(event)
    return events
