"""The timeline of each thread: messages and thread events, numbered by a gapless per-thread seq.

Seqs are allocated by an `UPDATE thread SET last_seq = last_seq + n` that row-locks the thread
(PostgreSQL) or takes the write lock (SQLite) until commit, so concurrent writers (HTTP, several
bridge workers) never share or skip a number; `models.append` stores batches of messages that way.
`unique(thread, seq)` and `unique(sender, client_msg_id)` are the backstops.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q
from tortoise.models import Model

from contract.commands import MAX_ATTACHMENTS, MAX_MENTIONS, MessageContent
from contract.content import POLL, TYPE_NAMES, parse_content, type_name
from contract.errors import (
    ContentInvalidError,
    InvalidParameterError,
    MessageNotFoundError,
    MqimError,
    NotAMemberError,
    ThreadNotFoundError,
)
from contract.fields import CLIENT_MSG_ID_MAX, ID_PATTERN
from models.clock import utcnow
from models.ids import new_message_id
from models.reach import POSTGRES_RECORD, SQLITE_RECORD
from models.thread import HistoryVisibility, Member, PastMember, Thread
from models.user import User

if TYPE_CHECKING:
    from models.append import StoredMessage

logger = logging.getLogger(__name__)

# What a client may send (by name; contract/content.py maps the aliases); the server also
# makes `poll` messages (contract.content.POLL).
MESSAGE_TYPES = TYPE_NAMES
_ID = re.compile(ID_PATTERN)
# C0 and C1 control characters; one regex search instead of a Python test per character (that
# was a tenth of a message's CPU on the bridge).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
HISTORY_LIMIT_DEFAULT = 50
HISTORY_LIMIT_MAX = 200


class EntryKind(StrEnum):
    MESSAGE = "message"
    EVENT = "event"
    # An action on a message (reaction, unsend, edit) or a poll update: `type` is the entry's
    # top-level type (message_reaction, ...), `data` its fields, `sender` who acted.
    ACTION = "action"


class Message(Model):
    """One timeline entry: a message (kind=message) or a thread event (kind=event)."""

    id = fields.CharField(primary_key=True, max_length=32)
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="entries", on_delete=fields.CASCADE
    )
    seq = fields.BigIntField()
    kind = fields.CharEnumField(EntryKind, max_length=8)
    sender: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    # The raw foreign-key columns tortoise adds, declared so type checkers see them.
    thread_id: str
    sender_id: str | None
    client_msg_id = fields.CharField(max_length=CLIENT_MSG_ID_MAX, null=True)
    # For messages: text, image, ...; for events: the logMessageType (log:subscribe, ...).
    type = fields.CharField(max_length=32)
    body = fields.TextField(null=True)
    reply_to = fields.CharField(max_length=32, null=True)
    mentions: Any = fields.JSONField(default=list)
    attachments: Any = fields.JSONField(default=list)
    data: Any = fields.JSONField(null=True)
    # The typed content of a message (docs/messages.md), as validated; None for plain text.
    content: Any = fields.JSONField(null=True)
    # {thread_id, message_id, sender_id} of the message this one is a forward of.
    forwarded_from: Any = fields.JSONField(null=True)
    edited_at = fields.DatetimeField(null=True)
    # Unsent: body, content, attachments and mentions are erased; the row stays as a tombstone.
    deleted = fields.BooleanField(default=False, db_default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "message"
        unique_together = (("thread", "seq"), ("sender", "client_msg_id"))
        indexes = (("thread_id", "reply_to"),)


@dataclass(frozen=True)
class Draft:
    """A message a user wants to send; `sender_id` comes from the transport, never the payload."""

    sender_id: str
    thread_id: str
    client_msg_id: str
    type: str = "text"
    body: str | None = None
    reply_to: str | None = None
    mentions: list[str] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    content: dict[str, Any] | None = None  # already validated for `type` (contract/content.py)
    forwarded_from: dict[str, Any] | None = None  # set by forward only


@dataclass(frozen=True)
class Appended:
    """The stored entry; `duplicate` is True when an earlier send with this client_msg_id won."""

    entry: StoredMessage
    duplicate: bool = False


AppendResult = Appended | MqimError


def draft_of(content: MessageContent, sender_id: str, thread_id: str, client_msg_id: str,
             ) -> Draft:
    """The draft of what a client sent (`sender_id` from the transport, never the payload): its
    type by name (aliases resolved), its content checked for that type (contract/content.py).
    ContentInvalidError (4003) naming the field; a client can never send a poll."""
    type_ = type_name(content.type)
    return Draft(
        sender_id=sender_id, thread_id=thread_id, client_msg_id=client_msg_id,
        type=type_, body=content.body, reply_to=content.reply_to,
        mentions=list(content.mentions), attachments=list(content.attachments),
        content=parse_content(type_, content.content),
    )


def check_draft(draft: Draft, max_body_chars: int) -> None:
    """Validate content only (no database); raises ContentInvalidError. `content` was checked
    when the draft was made (draft_of, or the server itself for polls and forwards)."""
    if not draft.client_msg_id or len(draft.client_msg_id) > CLIENT_MSG_ID_MAX:
        raise ContentInvalidError(f"client_msg_id must be 1 to {CLIENT_MSG_ID_MAX} characters")
    if _CONTROL.search(draft.client_msg_id):
        raise ContentInvalidError("client_msg_id must not contain control characters")
    if draft.type not in MESSAGE_TYPES and draft.type != POLL:
        raise ContentInvalidError(f"type must be one of {', '.join(MESSAGE_TYPES)}")
    if draft.body is not None and len(draft.body) > max_body_chars:
        raise ContentInvalidError(f"body is longer than {max_body_chars} characters")
    if draft.body is not None and "\0" in draft.body:
        raise ContentInvalidError("body must not contain NUL characters")
    if draft.type == "text" and not (draft.body or "").strip():
        raise ContentInvalidError("a text message needs a non-empty body")
    if draft.type == "text" and draft.content is not None:
        raise ContentInvalidError("content: a text message takes no content (use body)")
    if draft.type != "text" and not draft.content and not draft.attachments and not draft.body:
        raise ContentInvalidError(f"a {draft.type} message needs content, attachments or a body")
    if len(draft.mentions) > MAX_MENTIONS:
        raise ContentInvalidError(f"at most {MAX_MENTIONS} mentions")
    if len(draft.attachments) > MAX_ATTACHMENTS:
        raise ContentInvalidError(f"at most {MAX_ATTACHMENTS} attachments")


def upload_ids_of(content: dict[str, Any] | None, attachments: Sequence[Any]) -> list[str]:
    """The uploads a message references: `content.upload_id` and `attachments[].upload_id`,
    in order, without repeats. ContentInvalidError for an attachment's malformed upload_id."""
    found: list[str] = []
    if content is not None and isinstance(content.get("upload_id"), str):
        found.append(content["upload_id"])
    for index, attachment in enumerate(attachments):
        if not isinstance(attachment, dict) or "upload_id" not in attachment:
            continue
        upload_id = attachment["upload_id"]
        if not isinstance(upload_id, str) or not _ID.fullmatch(upload_id):
            raise ContentInvalidError(f"attachments.{index}.upload_id: must be an upload id")
        found.append(upload_id)
    return list(dict.fromkeys(found))


async def allocate_seqs(conn: BaseDBAsyncClient, thread_id: str, count: int) -> int:
    """Reserve `count` consecutive seqs in a thread and return the first.

    Must run inside a transaction: the UPDATE holds the thread's row lock until commit.
    """
    updated = await Thread.filter(id=thread_id).using_db(conn).update(
        last_seq=F("last_seq") + count, last_activity_at=utcnow()
    )
    if not updated:
        raise ThreadNotFoundError(thread_id)
    last = await Thread.filter(id=thread_id).using_db(conn).values_list("last_seq", flat=True)
    newest = cast(int, last[0])
    # The worker behind push and webhooks learns of the new entries in the same transaction.
    record = POSTGRES_RECORD if conn.capabilities.dialect == "postgres" else SQLITE_RECORD
    params: list[Any] = [thread_id, newest, newest - count]
    now = utcnow()
    params += [now] if conn.capabilities.dialect == "postgres" else [newest - count, now, now]
    await conn.execute_query(record, params)
    return newest - count + 1


async def append_event(
    conn: BaseDBAsyncClient,
    thread_id: str,
    author_id: str,
    log_type: str,
    data: dict[str, Any],
    body: str,
) -> Message:
    """Add a thread event (member joined, renamed, ...) to the timeline inside `conn`'s txn."""
    seq = await allocate_seqs(conn, thread_id, 1)
    return await Message.create(
        id=new_message_id(),
        thread_id=thread_id,
        seq=seq,
        kind=EntryKind.EVENT,
        sender_id=author_id,
        type=log_type,
        body=body,
        data=data,
        using_db=conn,
    )


@dataclass(frozen=True)
class Visible:
    """The seqs of a thread a user may read: from `low`, up to `high` (None: no end)."""

    low: int
    high: int | None


async def visible_range(user_id: str, thread_id: str) -> Visible:
    """What a member, or a former member, may read of a thread (docs/threads.md):

    - a current member: everything under `shared` visibility, else from the entry that added
      them (their latest join);
    - a former member: the same start, up to the entry that recorded their leaving.

    ThreadNotFoundError, or NotAMemberError to anyone who never was in it.
    """
    thread = await Thread.get_or_none(id=thread_id)
    if thread is None:
        raise ThreadNotFoundError(thread_id)
    shared = thread.history_visibility == HistoryVisibility.SHARED
    member = await Member.filter(thread_id=thread_id, user_id=user_id).first()
    if member is not None:
        return Visible(1 if shared else member.join_seq, None)
    past = await PastMember.filter(thread_id=thread_id, user_id=user_id).first()
    if past is None:
        raise NotAMemberError(thread_id)
    return Visible(1 if shared else past.join_seq, past.leave_seq)


@dataclass(frozen=True)
class HistoryPage:
    visible: Visible  # what the reader may read of the thread
    entries: list[Message]


async def get_history(
    user_id: str,
    thread_id: str,
    *,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int = HISTORY_LIMIT_DEFAULT,
    after_id: str | None = None,
    before_id: str | None = None,
) -> HistoryPage:
    """Timeline entries of a thread the user may read (`visible_range`), oldest first.

    With `after_seq`, the `limit` entries right after it; otherwise the newest `limit` entries
    before `before_seq` (or the end). Both bounds together give the entries strictly between.
    `after_id`/`before_id` stand for the seq of that entry of the thread (MessageNotFoundError
    if it has none); an id and a seq on the same side is an InvalidParameterError.
    """
    if after_id is not None and after_seq is not None:
        raise InvalidParameterError("give after_id or after_seq, not both")
    if before_id is not None and before_seq is not None:
        raise InvalidParameterError("give before_id or before_seq, not both")
    visible = await visible_range(user_id, thread_id)
    if after_id is not None:
        after_seq = await _seq_of(thread_id, after_id)
    if before_id is not None:
        before_seq = await _seq_of(thread_id, before_id)
    query = Message.filter(thread_id=thread_id, seq__gte=visible.low)
    if visible.high is not None:
        query = query.filter(seq__lte=visible.high)
    if after_seq is not None:
        query = query.filter(seq__gt=after_seq)
    if before_seq is not None:
        query = query.filter(seq__lt=before_seq)
    if after_seq is not None:
        return HistoryPage(visible, list(await query.order_by("seq").limit(limit)))
    newest = list(await query.order_by("-seq").limit(limit))
    newest.reverse()
    return HistoryPage(visible, newest)


async def _seq_of(thread_id: str, entry_id: str) -> int:
    found = await Message.filter(id=entry_id, thread_id=thread_id).values_list("seq", flat=True)
    if not found:
        raise MessageNotFoundError(f"no entry {entry_id} in thread {thread_id}")
    return cast(int, found[0])


def _readable(entry: Message | None, visible: Visible) -> bool:
    return entry is not None and entry.seq >= visible.low and (
        visible.high is None or entry.seq <= visible.high)


async def get_entry(user_id: str, thread_id: str, entry_id: str) -> HistoryPage:
    """One timeline entry of a thread, as a page of one: MessageNotFoundError if the thread has
    no such entry or it is outside what the user may read (NotAMemberError to a stranger)."""
    visible = await visible_range(user_id, thread_id)
    entry = await Message.filter(id=entry_id, thread_id=thread_id).first()
    if entry is None or not _readable(entry, visible):
        raise MessageNotFoundError(f"no message {entry_id} in thread {thread_id}")
    return HistoryPage(visible, [entry])


async def get_replies(
    user_id: str, thread_id: str, message_id: str, *, after_seq: int | None = None,
    before_seq: int | None = None, limit: int = HISTORY_LIMIT_DEFAULT,
) -> HistoryPage:
    """The replies to a message the user may read, oldest first: the first `limit` after
    `after_seq` (0: from the first reply), below `before_seq` if given; only those the user may
    read, unsent ones left out (as in `reply_count`). Uses the (thread_id, reply_to) index."""
    visible = await visible_range(user_id, thread_id)
    parent = await Message.filter(id=message_id, thread_id=thread_id,
                                  kind=EntryKind.MESSAGE).first()
    if parent is None or not _readable(parent, visible):
        raise MessageNotFoundError(f"no message {message_id} in thread {thread_id}")
    query = Message.filter(thread_id=thread_id, reply_to=message_id, kind=EntryKind.MESSAGE,
                           deleted=False, seq__gt=max(after_seq or 0, visible.low - 1))
    if visible.high is not None:
        query = query.filter(seq__lte=visible.high)
    if before_seq is not None:
        query = query.filter(seq__lt=before_seq)
    return HistoryPage(visible, list(await query.order_by("seq").limit(limit)))


async def last_entries(thread_ids: Sequence[str]) -> dict[str, Message]:
    """The newest timeline entry of each thread (for thread lists)."""
    if not thread_ids:
        return {}
    pairs = await Thread.filter(id__in=list(thread_ids), last_seq__gt=0).values_list(
        "id", "last_seq"
    )
    if not pairs:
        return {}
    wanted = Q(*(Q(thread_id=tid, seq=seq) for tid, seq in pairs), join_type=Q.OR)
    return {entry.thread_id: entry for entry in await Message.filter(wanted)}
