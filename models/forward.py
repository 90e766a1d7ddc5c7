"""Forwarding (docs/messages.md): the source a user may forward, the targets they may send to,
and the uploads a copy must reference so the targets' members can fetch its files.

The targets are checked before anything is sent, so one refused target refuses the whole
forward; the checks mirror the send rules of models/append.py (membership, dissolved, muted,
admins-only). A block in a direct thread is left to the send itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from contract.errors import (
    ContentInvalidError,
    MessageNotFoundError,
    MutedInThreadError,
    NotAdminError,
    NotAMemberError,
    ThreadDissolvedError,
    ThreadNotFoundError,
)
from models.clock import utcnow
from models.message import EntryKind, Message
from models.msgfile import MessageFile
from models.thread import (
    MUTED_FOREVER,
    HistoryVisibility,
    Member,
    Thread,
    ThreadStatus,
    get_membership,
    is_admin,
)


async def forwardable_source(user_id: str, thread_id: str, message_id: str) -> Message:
    """The message, if the user is a member who may read it (3001, 3003, then 4001 for a
    missing, unread-able or unsent message); a poll cannot be forwarded (4003)."""
    member = await get_membership(thread_id, user_id)
    thread = await Thread.get(id=thread_id)
    low = 1 if thread.history_visibility == HistoryVisibility.SHARED else member.join_seq
    message = await Message.filter(id=message_id, thread_id=thread_id, kind=EntryKind.MESSAGE,
                                   seq__gte=low, deleted=False).first()
    if message is None:
        raise MessageNotFoundError(f"no message {message_id} in thread {thread_id}")
    if message.type == "poll":
        raise ContentInvalidError("a poll cannot be forwarded")
    return message


async def check_targets(user_id: str, thread_ids: Sequence[str]) -> None:
    """Raise for the first target (in the order given) the user may not send to, naming it."""
    threads = {t.id: t for t in await Thread.filter(id__in=list(thread_ids))}
    members = {m.thread_id: m for m in await Member.filter(
        thread_id__in=list(threads), user_id=user_id)}
    now = utcnow()
    for thread_id in thread_ids:
        thread, member = threads.get(thread_id), members.get(thread_id)
        if thread is None:
            raise ThreadNotFoundError(thread_id)
        if member is None:
            raise NotAMemberError(thread_id)
        if thread.status == ThreadStatus.DISSOLVED:
            raise ThreadDissolvedError(thread_id)
        if member.muted_until is not None and member.muted_until > now:
            until = member.muted_until
            raise MutedInThreadError(thread_id,
                                     None if until >= MUTED_FOREVER else until.isoformat())
        if thread.admins_only_send and not is_admin(member):
            raise NotAdminError(f"only the owner and admins may send in thread {thread_id}")


async def upload_ids_of(message_id: str) -> list[str]:
    """The uploads the message references (models/msgfile.py)."""
    return [str(u) for u in await MessageFile.filter(message_id=message_id)
            .order_by("id").values_list("upload_id", flat=True)]
