"""The start of every action on a message or poll (docs/messages.md): lock the thread, find the
actor's membership, find the message in what the actor may read, and write the action's own
timeline entry. Reactions, unsend, edit, polls and votes all begin here, so they agree on who
may act on what.

    async with acting_on(thread_id, actor_id, message_id) as target:
        ...  # checks on target.member / target.message, writes through target.conn
        entry = await append_action(target.conn, thread_id, actor_id, "message_reaction", {...})
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from contract.errors import MessageNotFoundError
from models.ids import new_message_id
from models.message import EntryKind, Message, allocate_seqs
from models.thread import (
    HistoryVisibility,
    Member,
    Thread,
    get_membership,
    lock_thread,
    require_active,
)


@dataclass(frozen=True)
class Target:
    conn: BaseDBAsyncClient
    thread: Thread
    member: Member  # the actor's membership
    message: Message  # a message (never an event or action entry) the actor may read


@asynccontextmanager
async def acting_on(thread_id: str, actor_id: str, message_id: str) -> AsyncIterator[Target]:
    """One transaction: the thread locked (3001), the actor a current member (3003) of an active
    thread (3002), the message one of its messages the actor may read (4001 otherwise, also for
    a message before a non-shared history's join)."""
    async with in_transaction() as conn:
        thread = await lock_thread(conn, thread_id)
        member = await get_membership(thread_id, actor_id, conn)
        require_active(thread)
        message = await Message.filter(
            id=message_id, thread_id=thread_id, kind=EntryKind.MESSAGE).using_db(conn).first()
        low = 1 if thread.history_visibility == HistoryVisibility.SHARED else member.join_seq
        if message is None or message.seq < low:
            raise MessageNotFoundError(f"no message {message_id} in thread {thread_id}")
        yield Target(conn, thread, member, message)


async def append_action(conn: BaseDBAsyncClient, thread_id: str, actor_id: str, entry_type: str,
                        data: dict[str, Any]) -> Message:
    """Write an action entry (`message_reaction`, `message_unsend`, `message_edit`,
    `poll_update`) with its own seq inside `conn`'s transaction; `data` is the entry's fields
    beyond type, thread_id, seq and created_at (actions/timeline.py renders it)."""
    seq = await allocate_seqs(conn, thread_id, 1)
    return await Message.create(
        id=new_message_id(), thread_id=thread_id, seq=seq, kind=EntryKind.ACTION,
        sender_id=actor_id, type=entry_type, data=data, using_db=conn)
