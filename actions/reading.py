"""Read marks: the one code path behind `POST …/read` and the `read` op, and `GET /api/sync`.

A read mark only moves forward and never past the thread's last seq; when it moves, the thread
gets a `read_receipt` and the reader's other devices a `read` (neither takes a seq). Reading
clears the reader's `marked_unread`; when it was set, their devices also get `thread_settings`.
"""

from __future__ import annotations

from actions.context import Context
from actions.threadviews import settings_of
from broker.link.publisher import Event
from contract.events import ReadReceiptEvent, ReadSyncEvent, ThreadSettingsEvent
from contract.http import ReadResult, ThreadCounts
from models.clock import epoch_ms
from models.readstate import mark_read as store_read_mark
from models.readstate import sync_state


async def mark_read(ctx: Context, user_id: str, thread_id: str, seq: int) -> ReadResult:
    mark = await store_read_mark(user_id, thread_id, seq)
    events: list[Event] = []
    if mark.advanced:
        at = epoch_ms(mark.at)
        events += [
            (ctx.topics.thread(thread_id), ReadReceiptEvent(
                type="read_receipt", thread_id=thread_id, reader=user_id, seq=mark.read_seq,
                time=at)),
            (ctx.topics.user(user_id), ReadSyncEvent(
                type="read", thread_id=thread_id, seq=mark.read_seq, time=at)),
        ]
    if mark.unmarked is not None:
        events.append((ctx.topics.user(user_id), ThreadSettingsEvent(
            type="thread_settings", thread_id=thread_id, settings=settings_of(mark.unmarked))))
    await ctx.publish(events)
    return ReadResult(thread_id=thread_id, read_seq=mark.read_seq)


async def thread_counts(user_id: str) -> list[ThreadCounts]:
    return [ThreadCounts(thread_id=c.thread_id, max_seq=c.max_seq, read_seq=c.read_seq,
                         unread=c.unread) for c in await sync_state(user_id)]
