"""The timeline of each thread: messages and thread events, numbered by a gapless per-thread seq.

`append_messages` stores a whole batch in one transaction: one seq allocation per thread, one
membership query, one idempotency query, one bulk insert. Seqs are allocated by an
`UPDATE thread SET last_seq = last_seq + n` that row-locks the thread (PostgreSQL) or takes the
write lock (SQLite) until commit, so concurrent writers (HTTP, several bridge workers) never share
or skip a number. `unique(thread, seq)` and `unique(sender, client_msg_id)` are the backstops.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, StrictStr
from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.models import Model
from tortoise.transactions import in_transaction

from models.clock import epoch_ms, utcnow
from models.errors import (
    BlockedError,
    ContentInvalidError,
    MessageNotFoundError,
    MqimError,
    NotAMemberError,
    ThreadNotFoundError,
)
from models.friend import blocked_error, blocks_among
from models.ids import new_message_id
from models.thread import Member, Thread, check_member
from models.user import User

logger = logging.getLogger(__name__)

MESSAGE_TYPES = ("text", "image", "file", "audio", "video", "location", "sticker", "custom")
CLIENT_MSG_ID_MAX = 64
MAX_MENTIONS = 50
MAX_ATTACHMENTS = 10
HISTORY_LIMIT_DEFAULT = 50
HISTORY_LIMIT_MAX = 200


class EntryKind(StrEnum):
    MESSAGE = "message"
    EVENT = "event"


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
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "message"
        unique_together = (("thread", "seq"), ("sender", "client_msg_id"))

    def to_event(self) -> dict[str, Any]:
        """The wire shape shared by MQTT events and HTTP history (README, "Events")."""
        base: dict[str, Any] = {
            "thread_id": self.thread_id,
            "seq": self.seq,
            "message_id": self.id,
            "created_at": epoch_ms(self.created_at),
        }
        if self.kind == EntryKind.EVENT:
            return {
                "type": "event",
                **base,
                "author": self.sender_id,
                "logMessageType": self.type,
                "logMessageData": self.data or {},
                "logMessageBody": self.body or "",
            }
        return {
            "type": "message_reply" if self.reply_to else "message",
            **base,
            "sender_id": self.sender_id,
            "client_msg_id": self.client_msg_id,
            "msg_type": self.type,
            "body": self.body,
            "reply_to": self.reply_to,
            "mentions": self.mentions or [],
            "attachments": self.attachments or [],
        }


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


@dataclass(frozen=True)
class Appended:
    """The stored entry; `duplicate` is True when an earlier send with this client_msg_id won."""

    entry: Message
    duplicate: bool = False


AppendResult = Appended | MqimError


class MessageContent(BaseModel):
    """What a client sends as a message, the same over HTTP and MQTT (type-checked only;
    `check_draft` applies the content rules)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    type: StrictStr = "text"
    body: StrictStr | None = None
    reply_to: StrictStr | None = None
    mentions: list[StrictStr] = Field(default_factory=list)
    attachments: list[dict[str, Any]] = Field(default_factory=list)

    def to_draft(self, sender_id: str, thread_id: str, client_msg_id: str) -> Draft:
        return Draft(
            sender_id=sender_id, thread_id=thread_id, client_msg_id=client_msg_id,
            type=self.type, body=self.body, reply_to=self.reply_to,
            mentions=list(self.mentions), attachments=list(self.attachments),
        )


def check_draft(draft: Draft, max_body_chars: int) -> None:
    """Validate content only (no database); raises ContentInvalidError."""
    if not draft.client_msg_id or len(draft.client_msg_id) > CLIENT_MSG_ID_MAX:
        raise ContentInvalidError(f"client_msg_id must be 1 to {CLIENT_MSG_ID_MAX} characters")
    if draft.type not in MESSAGE_TYPES:
        raise ContentInvalidError(f"type must be one of {', '.join(MESSAGE_TYPES)}")
    if draft.body is not None and len(draft.body) > max_body_chars:
        raise ContentInvalidError(f"body is longer than {max_body_chars} characters")
    if draft.body is not None and "\0" in draft.body:
        raise ContentInvalidError("body must not contain NUL characters")
    if draft.type == "text" and not (draft.body or "").strip():
        raise ContentInvalidError("a text message needs a non-empty body")
    if draft.type != "text" and not draft.attachments and not draft.body:
        raise ContentInvalidError(f"a {draft.type} message needs attachments or a body")
    if len(draft.mentions) > MAX_MENTIONS:
        raise ContentInvalidError(f"at most {MAX_MENTIONS} mentions")
    if len(draft.attachments) > MAX_ATTACHMENTS:
        raise ContentInvalidError(f"at most {MAX_ATTACHMENTS} attachments")


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
    return cast(int, last[0]) - count + 1


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


async def append_messages(
    drafts: Sequence[Draft], *, max_body_chars: int
) -> list[AppendResult]:
    """Store a batch of messages; one result per draft, in order.

    Each result is the stored entry (possibly an earlier duplicate) or the MqimError that refused
    that draft; one bad draft never fails the others. Senders' read_seq advances to their message.
    """
    results: list[AppendResult | None] = [None] * len(drafts)
    pending: list[int] = []
    for index, draft in enumerate(drafts):
        try:
            check_draft(draft, max_body_chars)
        except MqimError as exc:
            results[index] = exc
        else:
            pending.append(index)
    if pending:
        try:
            async with in_transaction() as conn:
                await _append_batch(conn, drafts, pending, results)
        except IntegrityError:
            # Another writer stored one of these client_msg_ids between our check and our
            # insert. Redo the batch one draft at a time so only the duplicate is affected.
            logger.info("batch of %d hit a concurrent duplicate; retrying one by one", len(pending))
            for index in pending:
                results[index] = await _append_one(drafts[index])
    return [r for r in results if r is not None]


async def _append_one(draft: Draft) -> AppendResult:
    single: list[AppendResult | None] = [None]
    try:
        async with in_transaction() as conn:
            await _append_batch(conn, [draft], [0], single)
    except IntegrityError:
        existing = await Message.get_or_none(
            sender_id=draft.sender_id, client_msg_id=draft.client_msg_id
        )
        if existing is None:
            raise
        return Appended(existing, duplicate=True)
    assert single[0] is not None  # noqa: S101  # _append_batch fills every pending slot
    return single[0]


async def _append_batch(
    conn: BaseDBAsyncClient,
    drafts: Sequence[Draft],
    pending: list[int],
    results: list[AppendResult | None],
) -> None:
    thread_ids = sorted({drafts[i].thread_id for i in pending})
    sender_ids = sorted({drafts[i].sender_id for i in pending})
    live_threads = dict(cast(list[tuple[str, str | None]], await Thread.filter(
        id__in=thread_ids).using_db(conn).values_list("id", "direct_key")))
    # The two users of each direct thread (its key joins their ids with ':', which no id
    # contains), and the blocks between them: in a direct thread, a block either way stops both.
    direct_pairs = {tid: _split_direct_key(key) for tid, key in live_threads.items() if key}
    blocks = await blocks_among(direct_pairs.values(), conn)
    memberships = set(
        await Member.filter(thread_id__in=thread_ids, user_id__in=sender_ids)
        .using_db(conn)
        .values_list("thread_id", "user_id")
    )
    existing = {
        (m.sender_id, m.client_msg_id): m
        for m in await Message.filter(
            sender_id__in=sender_ids,
            client_msg_id__in=list({drafts[i].client_msg_id for i in pending}),
        ).using_db(conn)
    }
    reply_ids = [drafts[i].reply_to for i in pending if drafts[i].reply_to]
    reply_threads = dict(
        await Message.filter(id__in=reply_ids, kind=EntryKind.MESSAGE)
        .using_db(conn)
        .values_list("id", "thread_id")
    ) if reply_ids else {}

    first_in_batch: dict[tuple[str, str], int] = {}
    aliases: list[tuple[int, int]] = []
    by_thread: dict[str, list[int]] = {}
    for i in pending:
        draft = drafts[i]
        key = (draft.sender_id, draft.client_msg_id)
        if draft.thread_id not in live_threads:
            results[i] = ThreadNotFoundError(draft.thread_id)
        elif (draft.thread_id, draft.sender_id) not in memberships:
            results[i] = NotAMemberError(draft.thread_id)
        elif key in existing:
            results[i] = Appended(existing[key], duplicate=True)
        elif key in first_in_batch:
            aliases.append((i, first_in_batch[key]))
        elif (refusal := _block_refusal(draft, direct_pairs, blocks)) is not None:
            results[i] = refusal
        elif draft.reply_to and reply_threads.get(draft.reply_to) != draft.thread_id:
            results[i] = MessageNotFoundError(
                f"message {draft.reply_to} to reply to is not in this thread"
            )
        else:
            first_in_batch[key] = i
            by_thread.setdefault(draft.thread_id, []).append(i)

    rows: list[Message] = []
    for thread_id in sorted(by_thread):  # a fixed lock order avoids deadlocks between batches
        indexes = by_thread[thread_id]
        first_seq = await allocate_seqs(conn, thread_id, len(indexes))
        last_by_sender: dict[str, int] = {}
        for offset, i in enumerate(indexes):
            draft = drafts[i]
            row = Message(
                id=new_message_id(),
                thread_id=thread_id,
                seq=first_seq + offset,
                kind=EntryKind.MESSAGE,
                sender_id=draft.sender_id,
                client_msg_id=draft.client_msg_id,
                type=draft.type,
                body=draft.body,
                reply_to=draft.reply_to,
                mentions=list(draft.mentions),
                attachments=list(draft.attachments),
                created_at=utcnow(),
            )
            rows.append(row)
            results[i] = Appended(row)
            last_by_sender[draft.sender_id] = row.seq
        for sender_id, seq in last_by_sender.items():
            _ = await Member.filter(thread_id=thread_id, user_id=sender_id).using_db(conn).update(
                read_seq=seq
            )
    if rows:
        await Message.bulk_create(rows, using_db=conn)
    for i, first in aliases:
        stored = results[first]
        assert isinstance(stored, Appended)  # noqa: S101  # set in the loop above
        results[i] = Appended(stored.entry, duplicate=True)


def _split_direct_key(key: str) -> tuple[str, str]:
    first, _, second = key.partition(":")
    return first, second


def _block_refusal(
    draft: Draft, direct_pairs: dict[str, tuple[str, str]], blocks: set[tuple[str, str]]
) -> BlockedError | None:
    """Why the draft may not go to its direct thread, if one of its two users blocked the other."""
    pair = direct_pairs.get(draft.thread_id)
    if pair is None or not blocks:
        return None
    other = pair[1] if pair[0] == draft.sender_id else pair[0]
    for blocker, blocked in ((draft.sender_id, other), (other, draft.sender_id)):
        if (blocker, blocked) in blocks:
            return blocked_error(draft.sender_id, other, blocker)
    return None


async def get_history(
    user_id: str,
    thread_id: str,
    *,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int = HISTORY_LIMIT_DEFAULT,
) -> list[Message]:
    """Timeline entries of a thread the user belongs to, oldest first.

    With `after_seq`, the `limit` entries right after it; otherwise the newest `limit` entries
    before `before_seq` (or the end). Both bounds together give the entries strictly between.
    """
    await check_member(thread_id, user_id)
    query = Message.filter(thread_id=thread_id)
    if after_seq is not None:
        query = query.filter(seq__gt=after_seq)
    if before_seq is not None:
        query = query.filter(seq__lt=before_seq)
    if after_seq is not None:
        return list(await query.order_by("seq").limit(limit))
    newest = list(await query.order_by("-seq").limit(limit))
    newest.reverse()
    return newest


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
