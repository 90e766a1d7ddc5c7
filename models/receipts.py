"""Who read or received a message, derived from each current member's `read_seq` and
`delivered_seq` (docs/design.md section 10): no per-message rows, so the answer for a group of
1,000 is one indexed read of its member rows.

The recipients of a message are the current members who were in the thread when it was sent
(`join_seq` at or before its seq), its sender excluded: someone added later was never sent it,
and their read mark, set at their join, would otherwise count them as readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from contract.errors import MessageNotFoundError
from models.message import EntryKind, Message, visible_range
from models.thread import Member


@dataclass(frozen=True)
class Receipts:
    read_by: list[str]
    delivered_to: list[str]  # read_by included
    pending: list[str]


async def message_receipts(viewer_id: str, thread_id: str, message_id: str) -> Receipts:
    """The receipts of a message the viewer may read (`visible_range`): ThreadNotFoundError,
    NotAMemberError, or MessageNotFoundError for an id of another thread, outside the viewer's
    history, or of a thread event."""
    visible = await visible_range(viewer_id, thread_id)
    found = await Message.filter(id=message_id, thread_id=thread_id).values_list(
        "seq", "kind", "sender_id")
    if not found:
        raise MessageNotFoundError(f"message {message_id} not found in thread {thread_id}")
    seq, kind, sender_id = cast(tuple[int, str, str | None], found[0])
    if (kind != EntryKind.MESSAGE or seq < visible.low
            or (visible.high is not None and seq > visible.high)):
        raise MessageNotFoundError(f"message {message_id} not found in thread {thread_id}")
    query = Member.filter(thread_id=thread_id, join_seq__lte=seq)
    if sender_id is not None:
        query = query.exclude(user_id=sender_id)
    rows = await query.order_by("id").values_list("user_id", "read_seq", "delivered_seq")
    read_by: list[str] = []
    delivered_to: list[str] = []
    pending: list[str] = []
    for user_id, read_seq, delivered_seq in cast(list[tuple[str, int, int]], rows):
        # Some writes move read_seq alone (a sender's own send); having read is having received.
        if read_seq >= seq:
            read_by.append(user_id)
            delivered_to.append(user_id)
        elif delivered_seq >= seq:
            delivered_to.append(user_id)
        else:
            pending.append(user_id)
    return Receipts(read_by, delivered_to, pending)
