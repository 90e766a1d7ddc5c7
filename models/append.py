"""Appending a batch of messages: the bridge's hot path, in as few round trips as SQL allows.

    append_messages(drafts) -> one result per draft (the stored entry, a duplicate, or an error)

A batch costs two statements, whatever the number of threads and senders in it (a third fetches
the stored messages of retried sends, when there are any):

1. one read: the threads (with their status and send rule), the senders' memberships (role and
   mute; the mentioned users' too), earlier sends with the same client_msg_ids, blocks inside
   direct threads and the messages replied to (UNION ALL of tagged rows);
2. one write that allocates seqs and stores the messages, the senders' read marks and the reach
   queue's rows (models/appendwrite.py).

The ORM would send ~4 queries per thread plus 6 per batch, each built by pypika; at 1,000 msg/s
that was 7 ms per batch and most of the bridge's CPU. `unique(thread, seq)` and
`unique(sender, client_msg_id)` stay the backstops: a concurrent duplicate fails the write and
the batch is redone one draft at a time.

The read and the write are separate statements, as the ORM's were: a member removed between
them can still have a message stored just before the removal's event.

What a batch stores comes back as plain `StoredMessage` rows, not ORM objects: building a
tortoise `Message` (its per-field setattr and conversions) cost more than the rest of a
message's path through this module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError

from contract.errors import (
    ClientMsgIdConflictError,
    MessageNotFoundError,
    MqimError,
    MutedInThreadError,
    NotAdminError,
    NotAMemberError,
    ThreadDissolvedError,
    ThreadNotFoundError,
)
from models.appendwrite import Row, write_postgres, write_sqlite
from models.block import blocked_error
from models.clock import utcnow
from models.ids import new_message_ids
from models.message import Appended, AppendResult, Draft, EntryKind, Message, check_draft
from models.msgstate import ALL_MENTION, mention_refusal
from models.sqldialect import Fetch, SqlDialect, batch_connection
from models.thread import MUTED_FOREVER, Role, ThreadKind, ThreadStatus

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class StoredMessage:
    """A message as stored by `append_messages`: the columns its callers read (the event, the
    send result, the upload links), with those a fresh message always has as defaults."""

    id: str
    thread_id: str
    seq: int
    sender_id: str | None
    client_msg_id: str | None
    type: str
    body: str | None
    reply_to: str | None
    mentions: list[str]
    attachments: list[dict[str, Any]]
    content: dict[str, Any] | None
    forwarded_from: dict[str, Any] | None
    created_at: datetime
    kind: str = EntryKind.MESSAGE
    data: dict[str, Any] | None = None
    edited_at: datetime | None = None
    deleted: bool = False


def stored_of(message: Message) -> StoredMessage:
    """The row of a message the ORM loaded (an earlier send answered again)."""
    return StoredMessage(
        id=message.id, thread_id=message.thread_id, seq=message.seq, sender_id=message.sender_id,
        client_msg_id=message.client_msg_id, type=message.type, body=message.body,
        reply_to=message.reply_to, mentions=message.mentions, attachments=message.attachments,
        content=message.content, forwarded_from=message.forwarded_from,
        created_at=message.created_at, kind=message.kind, data=message.data,
        edited_at=message.edited_at, deleted=message.deleted,
    )


async def append_messages(
    drafts: Sequence[Draft], *, max_body_chars: int, reach: bool = True,
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
            await _append_batch(drafts, pending, results, reach)
        except IntegrityError:
            # Another writer stored one of these client_msg_ids between our read and our
            # write. Redo the batch one draft at a time so only the duplicate is affected.
            logger.info("batch of %d hit a concurrent duplicate; retrying one by one", len(pending))
            for index in pending:
                results[index] = await _append_one(drafts[index], reach)
    return [r for r in results if r is not None]


async def _append_one(draft: Draft, reach: bool) -> AppendResult:
    single: list[AppendResult | None] = [None]
    try:
        await _append_batch([draft], [0], single, reach)
    except IntegrityError:
        existing = await Message.get_or_none(
            sender_id=draft.sender_id, client_msg_id=draft.client_msg_id
        )
        if existing is None:
            raise
        if existing.thread_id != draft.thread_id:
            return ClientMsgIdConflictError(_conflict_msg(draft))
        return Appended(stored_of(existing), duplicate=True)
    assert single[0] is not None  # noqa: S101  # _append_batch fills every pending slot
    return single[0]


@dataclass(frozen=True)
class _ThreadRow:
    direct_key: str | None
    dissolved: bool
    room: bool
    admins_only_send: bool


@dataclass(frozen=True)
class _MemberRow:
    admin: bool
    muted_until: float | None  # epoch seconds of the admins' mute, if any


class NotInRoomError(NotAMemberError):
    """The sender is not in this room: the use case joins them and sends again (a user who
    sends to a room joins it first)."""


@dataclass
class _Found:
    """What the read statement found about a batch."""

    threads: dict[str, _ThreadRow] = field(default_factory=dict)
    members: dict[tuple[str, str], _MemberRow] = field(default_factory=dict)  # (thread, user)
    # (sender, client_msg_id) -> (message id, its thread id)
    duplicates: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    blocks: set[tuple[str, str]] = field(default_factory=set)  # (blocker, blocked)
    replied: dict[str, str] = field(default_factory=dict)  # message id -> thread id


async def _read(sql: SqlDialect, fetch: Fetch, drafts: Sequence[Draft]) -> _Found:
    threads = sorted({d.thread_id for d in drafts})
    # The senders' memberships, and the mentioned users' (mentions name members: 1001).
    members = sorted({(d.thread_id, u) for d in drafts
                      for u in (d.sender_id, *d.mentions) if u != ALL_MENTION})
    sends = sorted({(d.sender_id, d.client_msg_id) for d in drafts})
    replies = sorted({d.reply_to for d in drafts if d.reply_to})
    first, second = sql.direct_user("t.direct_key", 1), sql.direct_user("t.direct_key", 2)
    # Only placeholders and fixed column expressions are formatted in; values are parameters.
    parts = [
        # Text in every column, so the dialects agree on the UNION's types.
        "SELECT 't' AS k, id AS a, direct_key AS b, status AS c, kind AS d, "  # noqa: S608
        "CASE WHEN admins_only_send THEN 'y' ELSE 'n' END AS e FROM thread WHERE "
        f"{sql.values_in('id', threads)}",
        f"SELECT 'm', m.thread_id, m.user_id, m.role, {sql.epoch('m.muted_until')}, NULL "  # noqa: S608
        f"FROM {sql.pairs_join('thread_member m', 'm.thread_id', 'm.user_id', members)}",
        "SELECT 'd', m.sender_id, m.client_msg_id, m.id, m.thread_id, NULL FROM "  # noqa: S608
        f"{sql.pairs_join('message m', 'm.sender_id', 'm.client_msg_id', sends)}",
        # Blocks either way between the two users of each direct thread (a direct_key is their
        # sorted ids joined by ':', which no id contains).
        "SELECT 'b', ub.user_id, ub.blocked_id, NULL, NULL, NULL FROM thread t "  # noqa: S608
        f"JOIN user_block ub ON (ub.user_id = {first} AND ub.blocked_id = {second}) OR "
        f"(ub.user_id = {second} AND ub.blocked_id = {first}) "
        f"WHERE t.direct_key IS NOT NULL AND {sql.values_in('t.id', threads)}",
    ]
    if replies:
        parts.append("SELECT 'r', id, thread_id, NULL, NULL, NULL FROM message WHERE "  # noqa: S608
                     f"{sql.values_in('id', replies)} AND kind = 'message'")
    rows = await fetch(" UNION ALL ".join(parts), sql.params)
    found = _Found()
    for kind, a, b, c, d, e in (tuple(row) for row in rows):
        if kind == "t":
            found.threads[a] = _ThreadRow(direct_key=b, dissolved=c == ThreadStatus.DISSOLVED,
                                          room=d == ThreadKind.ROOM, admins_only_send=e == "y")
        elif kind == "m":
            found.members[(a, b)] = _MemberRow(admin=c in (Role.OWNER, Role.ADMIN),
                                               muted_until=float(d) if d is not None else None)
        elif kind == "d":
            found.duplicates[(a, b)] = (c, d)
        elif kind == "b":
            found.blocks.add((a, b))
        else:
            found.replied[a] = b
    return found


@dataclass
class _Plan:
    """What a batch's read decided: the rows to write, and the drafts answered otherwise."""

    by_thread: dict[str, list[Row]] = field(default_factory=dict)
    row_of: dict[int, Row] = field(default_factory=dict)  # draft index -> its row
    duplicates: dict[int, str] = field(default_factory=dict)  # draft index -> stored message id
    aliases: list[tuple[int, int]] = field(default_factory=list)  # (draft index, its first)


async def _append_batch(
    drafts: Sequence[Draft], pending: list[int], results: list[AppendResult | None],
    reach: bool,
) -> None:
    conn = connections.get("default")
    now = utcnow()
    # The read and the write on one pooled connection (one acquire and release per batch).
    async with batch_connection(conn) as fetch:
        found = await _read(SqlDialect(conn), fetch, [drafts[i] for i in pending])
        plan = _plan(drafts, pending, found, results, now)
        # Threads deleted since the read come back without a base; nothing was stored in them.
        bases = ({} if not plan.by_thread
                 else await write_postgres(fetch, plan.by_thread, now, reach=reach)
                 if conn.capabilities.dialect == "postgres"
                 else await write_sqlite(conn, plan.by_thread, now, reach=reach))
    for i, row in plan.row_of.items():
        base = bases.get(row.draft.thread_id)
        results[i] = (ThreadNotFoundError(row.draft.thread_id) if base is None
                      else Appended(_entry(row, base + row.ord, now)))
    if plan.duplicates:  # retries: a third query, for the stored messages to answer with
        stored = {m.id: m for m in await Message.filter(id__in=list(plan.duplicates.values()))}
        for i, message_id in plan.duplicates.items():
            earlier = stored.get(message_id)  # gone only if its thread was deleted meanwhile
            results[i] = (Appended(stored_of(earlier), duplicate=True) if earlier is not None
                          else ThreadNotFoundError(drafts[i].thread_id))
    for i, first in plan.aliases:
        original = results[first]
        results[i] = (Appended(original.entry, duplicate=True)
                      if isinstance(original, Appended) else original)


def _plan(drafts: Sequence[Draft], pending: list[int], found: _Found,
          results: list[AppendResult | None], now: datetime) -> _Plan:
    """Each pending draft's fate by what the read found: a row to write, a duplicate of a stored
    message or of an earlier draft in the batch, or the error that refuses it (in `results`)."""
    plan = _Plan()
    duplicates, aliases, by_thread, row_of = (plan.duplicates, plan.aliases, plan.by_thread,
                                              plan.row_of)
    first_in_batch: dict[tuple[str, str], int] = {}
    ids = iter(new_message_ids(len(pending)))
    for i in pending:
        draft = drafts[i]
        key = (draft.sender_id, draft.client_msg_id)
        thread = found.threads.get(draft.thread_id)
        member = found.members.get((draft.thread_id, draft.sender_id))
        if thread is None:
            results[i] = ThreadNotFoundError(draft.thread_id)
        elif member is None:
            results[i] = (NotInRoomError(draft.thread_id) if thread.room and not thread.dissolved
                          else NotAMemberError(draft.thread_id))
        elif key in found.duplicates:
            message_id, its_thread = found.duplicates[key]
            if its_thread == draft.thread_id:
                duplicates[i] = message_id
            else:
                # A retry is only ever answered in its own thread: answering with (or
                # republishing) a message of another thread would show it to this thread.
                results[i] = ClientMsgIdConflictError(_conflict_msg(draft))
        elif key in first_in_batch:
            first = first_in_batch[key]
            if drafts[first].thread_id != draft.thread_id:
                results[i] = ClientMsgIdConflictError(_conflict_msg(draft))
            else:
                aliases.append((i, first))
        elif (refusal := (_governance_refusal(draft.thread_id, thread, member, now)
                          or _block_refusal(draft, found)
                          or mention_refusal(draft, member.admin, found.members))) is not None:
            results[i] = refusal
        elif draft.reply_to and found.replied.get(draft.reply_to) != draft.thread_id:
            results[i] = MessageNotFoundError(
                f"message {draft.reply_to} to reply to is not in this thread"
            )
        else:
            first_in_batch[key] = i
            rows = by_thread.setdefault(draft.thread_id, [])
            rows.append(row_of.setdefault(i, Row(draft, next(ids), len(rows) + 1)))
    return plan


def _conflict_msg(draft: Draft) -> str:
    return (f"client_msg_id {draft.client_msg_id!r} was already used in another thread; "
            "use a new one for each message")


def _entry(row: Row, seq: int, now: datetime) -> StoredMessage:
    draft = row.draft
    return StoredMessage(
        row.id, draft.thread_id, seq, draft.sender_id, draft.client_msg_id, draft.type,
        draft.body, draft.reply_to, list(draft.mentions), list(draft.attachments), draft.content,
        draft.forwarded_from, now,
    )


def _governance_refusal(
    thread_id: str, thread: _ThreadRow, member: _MemberRow, now: datetime
) -> MqimError | None:
    """Why the thread's state or the sender's standing in it refuses a send, if it does."""
    if thread.dissolved:
        return ThreadDissolvedError(thread_id)
    if member.muted_until is not None and member.muted_until > now.timestamp():
        until = datetime.fromtimestamp(member.muted_until, UTC)
        return MutedInThreadError(thread_id, None if until >= MUTED_FOREVER else until.isoformat())
    if thread.admins_only_send and not member.admin:
        return NotAdminError("only the owner and admins may send in this thread")
    return None


def _block_refusal(draft: Draft, found: _Found) -> MqimError | None:
    """Why the draft may not go to its direct thread, if one of its two users blocked the other."""
    key = found.threads[draft.thread_id].direct_key
    if not key or not found.blocks:
        return None
    first, _, second = key.partition(":")
    other = second if first == draft.sender_id else first
    for blocker, blocked in ((draft.sender_id, other), (other, draft.sender_id)):
        if (blocker, blocked) in found.blocks:
            return blocked_error(draft.sender_id, other, blocker)
    return None
