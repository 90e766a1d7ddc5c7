"""Read and delivered marks: the one code path behind `POST …/read` and the `read` op,
`POST …/delivered` and the `delivered` op, `POST /api/threads/read-all`, and `GET /api/sync`.

A read mark only moves forward and never past the thread's last seq; when it moves, the thread
gets a `read_receipt` and the reader's other devices a `read` (neither takes a seq). Reading
clears the reader's `marked_unread`; when it was set, their devices also get `thread_settings`.
Reading also moves the delivered mark (no `delivery_receipt` then: the `read_receipt` says
more). A delivered mark moved on its own gives the thread a `delivery_receipt` (no seq either).
Read-all gives each thread it moved the events of one read.
"""

from __future__ import annotations

from actions.context import Context
from actions.threadviews import settings_of
from broker.link.publisher import Event
from contract.events import (
    DeliveryReceiptEvent,
    ReadReceiptEvent,
    ReadSyncEvent,
    ThreadSettingsEvent,
)
from contract.http import ReadResult, ThreadCounts
from contract.receipts import DeliveredResult, ReadAllMoved
from models.clock import epoch_ms
from models.readstate import mark_all_read as store_all_read
from models.readstate import mark_delivered as store_delivered_mark
from models.readstate import mark_read as store_read_mark
from models.readstate import sync_state
from models.thread import Member


async def mark_read(ctx: Context, user_id: str, thread_id: str, seq: int) -> ReadResult:
    mark = await store_read_mark(user_id, thread_id, seq)
    at = epoch_ms(mark.at)
    events = _read_events(ctx, user_id, thread_id, mark.read_seq, at) if mark.advanced else []
    if mark.unmarked is not None:
        events.append(_unmarked_event(ctx, mark.unmarked))
    await ctx.publish(events)
    return ReadResult(thread_id=thread_id, read_seq=mark.read_seq)


def _read_events(ctx: Context, user_id: str, thread_id: str, seq: int, at: int) -> list[Event]:
    return [
        (ctx.topics.thread(thread_id), ReadReceiptEvent(
            type="read_receipt", thread_id=thread_id, reader=user_id, seq=seq, time=at)),
        (ctx.topics.user(user_id), ReadSyncEvent(
            type="read", thread_id=thread_id, seq=seq, time=at)),
    ]


def _unmarked_event(ctx: Context, member: Member) -> Event:
    return (ctx.topics.user(member.user_id), ThreadSettingsEvent(
        type="thread_settings", thread_id=member.thread_id, settings=settings_of(member)))


async def mark_delivered(ctx: Context, user_id: str, thread_id: str, seq: int,
                         ) -> DeliveredResult:
    mark = await store_delivered_mark(user_id, thread_id, seq)
    if mark.advanced:
        await ctx.publish([(ctx.topics.thread(thread_id), DeliveryReceiptEvent(
            type="delivery_receipt", thread_id=thread_id, user_id=user_id,
            seq=mark.delivered_seq))])
    return DeliveredResult(thread_id=thread_id, delivered_seq=mark.delivered_seq)


async def mark_all_read(ctx: Context, user_id: str) -> list[ReadAllMoved]:
    done = await store_all_read(user_id)
    at = epoch_ms(done.at)
    events = [event for thread_id, seq in done.moved
              for event in _read_events(ctx, user_id, thread_id, seq, at)]
    events += [_unmarked_event(ctx, member) for member in done.unmarked]
    await ctx.publish(events)
    return [ReadAllMoved(thread_id=thread_id, read_seq=seq) for thread_id, seq in done.moved]


async def thread_counts(user_id: str) -> list[ThreadCounts]:
    return [ThreadCounts(thread_id=c.thread_id, max_seq=c.max_seq, read_seq=c.read_seq,
                         unread=c.unread) for c in await sync_state(user_id)]
