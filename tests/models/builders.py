"""Users, threads and drafts for the model-level tests, made through the models' own functions
(no HTTP) or, for plain rows, their tables: every id is fresh, so tests share a database without
seeing each other's rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from models.append import StoredMessage, append_messages
from models.block import Block
from models.membership import create_thread
from models.message import Appended, AppendResult, Draft, EntryKind, Message
from models.thread import Member, Thread
from models.user import User
from tests.helpers import unique_id

MAX_BODY_CHARS = 8000  # Settings' default


async def new_user() -> str:
    """A user row: these tests never sign in, so no password policy or bcrypt."""
    user = await User.create(id=unique_id("m"), name="m", password_hash="!")
    return user.id


async def block(user_id: str, blocked_id: str) -> None:
    """`user_id` blocks `blocked_id` (just the row: the block as the append rule reads it)."""
    _ = await Block.create(user_id=user_id, blocked_id=blocked_id)


async def new_users(count: int) -> list[str]:
    return [await new_user() for _ in range(count)]


async def new_group(owner_id: str, *member_ids: str) -> str:
    """A group owned by `owner_id`; its creation event takes seq 1."""
    return (await create_thread(owner_id, "group", list(member_ids), name="g")).thread.id


async def new_direct(first_id: str, second_id: str) -> str:
    """A direct thread; it has no creation event, so its first message takes seq 1."""
    return (await create_thread(first_id, "direct", [second_id])).thread.id


def draft(sender_id: str, thread_id: str, client_msg_id: str | None = None, *,
          body: str | None = "hello", **extra: Any) -> Draft:
    if client_msg_id is None:
        client_msg_id = unique_id("c")
    return Draft(sender_id=sender_id, thread_id=thread_id, client_msg_id=client_msg_id,
                 body=body, **extra)


async def append(drafts: Sequence[Draft]) -> list[AppendResult]:
    results = await append_messages(drafts, max_body_chars=MAX_BODY_CHARS)
    assert len(results) == len(drafts)
    return results


def stored(result: AppendResult) -> StoredMessage:
    """The entry of a result that must be a fresh store (not a duplicate, not an error)."""
    assert isinstance(result, Appended), result
    assert not result.duplicate
    return result.entry


async def last_seq(thread_id: str) -> int:
    thread = await Thread.get(id=thread_id)
    return int(thread.last_seq)


async def timeline_seqs(thread_id: str) -> list[int]:
    """Every entry's seq in the thread (messages and events), in seq order."""
    seqs = await Message.filter(thread_id=thread_id).order_by("seq").values_list(
        "seq", flat=True)
    return cast(list[int], seqs)


async def assert_gapless(thread_id: str) -> int:
    """The thread's seqs are exactly 1..last_seq; returns last_seq."""
    last = await last_seq(thread_id)
    assert await timeline_seqs(thread_id) == list(range(1, last + 1)), thread_id
    return last


async def messages_by(sender_id: str, client_msg_id: str) -> list[Message]:
    return list(await Message.filter(sender_id=sender_id, client_msg_id=client_msg_id,
                                     kind=EntryKind.MESSAGE))


async def read_seq(thread_id: str, user_id: str) -> int:
    member = await Member.get(thread_id=thread_id, user_id=user_id)
    return int(member.read_seq)
