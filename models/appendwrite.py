"""The one write of a batch of messages (models/append.py decides what goes in it): allocate the
seqs, insert the messages, move the senders' read marks and record the threads in the reach
queue (models/reach.py) for the push and webhook worker, all in one transaction.

On PostgreSQL that is one statement (data-modifying CTEs, so it is atomic without a transaction
block): `UPDATE thread SET last_seq = last_seq + n` per thread (row locks taken in thread-id
order, held to commit, so concurrent writers never share or skip a seq), the INSERT, the read
marks and the queue. On SQLite a short transaction (the write lock serialises writers, and there
is no network to save).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from models.message import Draft
from models.reach import SQLITE_RECORD
from models.sqldialect import Fetch


@dataclass
class Row:
    """A message to insert: `ord` is its 1-based place among the batch's rows of its thread."""

    draft: Draft
    id: str
    ord: int


def _last_by_sender(rows: Iterable[Row]) -> dict[str, int]:
    """Each sender's last row (its ord) in a thread: their read_seq moves up to it."""
    return {row.draft.sender_id: row.ord for row in rows}


# One statement: lock the threads in id order, move their last_seq, insert, advance read_seq,
# record the threads for the worker.
# Returns each thread's seq before the batch (its rows get base + ord).
_POSTGRES_WRITE = """
WITH v AS (SELECT * FROM json_to_recordset($1::json) AS v(id text, n bigint)),
locked AS MATERIALIZED (
    SELECT t.id FROM thread t WHERE t.id = ANY(ARRAY(SELECT id FROM v)) ORDER BY t.id
    FOR UPDATE),
upd AS (
    UPDATE thread t SET last_seq = t.last_seq + v.n, last_activity_at = $2
    FROM v, locked WHERE t.id = v.id AND locked.id = t.id
    RETURNING t.id, t.last_seq - v.n AS base),
ins AS (
    INSERT INTO message (id, thread_id, seq, kind, sender_id, client_msg_id, type, body,
                         reply_to, mentions, attachments, content, forwarded_from, deleted,
                         created_at)
    SELECT r.id, r.thread_id, upd.base + r.ord, 'message', r.sender_id, r.client_msg_id,
           r.type, r.body, r.reply_to, r.mentions, r.attachments, r.content, r.forwarded_from,
           false, $2
    FROM json_to_recordset($3::json) AS r(id text, thread_id text, ord bigint, sender_id text,
         client_msg_id text, type text, body text, reply_to text, mentions jsonb,
         attachments jsonb, content jsonb, forwarded_from jsonb)
    JOIN upd ON upd.id = r.thread_id),
rs AS (
    UPDATE thread_member m SET read_seq = upd.base + s.ord
    FROM json_to_recordset($4::json) AS s(thread_id text, user_id text, ord bigint)
    JOIN upd ON upd.id = s.thread_id
    WHERE m.thread_id = s.thread_id AND m.user_id = s.user_id AND m.read_seq < upd.base + s.ord),
rq AS (
    INSERT INTO reach_queue (thread_id, seq, hook_seq, push_seq, updated_at, waiting_since)
    SELECT upd.id, upd.base + v.n, upd.base, upd.base, $2, $2 FROM upd JOIN v ON v.id = upd.id
    WHERE $5::boolean
    ON CONFLICT (thread_id) DO UPDATE SET seq = GREATEST(reach_queue.seq, EXCLUDED.seq),
        updated_at = EXCLUDED.updated_at, waiting_since = CASE
            WHEN reach_queue.push_seq >= reach_queue.seq THEN EXCLUDED.updated_at
            ELSE reach_queue.waiting_since END)
SELECT id, base FROM upd
"""


async def write_postgres(
    fetch: Fetch, by_thread: dict[str, list[Row]], now: datetime, *, reach: bool,
) -> dict[str, int]:
    threads = sorted(by_thread)
    rows = [row for t in threads for row in by_thread[t]]
    reads = [(t, sender, ord_) for t in threads
             for sender, ord_ in _last_by_sender(by_thread[t]).items()]
    # Every list as a JSON parameter: asyncpg checks each element of an array parameter
    # against collections.abc in Python (4% of mqim's CPU with one array per column); a JSON
    # null becomes SQL NULL.
    messages = orjson.dumps([{
        "id": r.id, "thread_id": r.draft.thread_id, "ord": r.ord, "sender_id": r.draft.sender_id,
        "client_msg_id": r.draft.client_msg_id, "type": r.draft.type, "body": r.draft.body,
        "reply_to": r.draft.reply_to, "mentions": r.draft.mentions,
        "attachments": r.draft.attachments, "content": r.draft.content,
        "forwarded_from": r.draft.forwarded_from} for r in rows]).decode()
    result = await fetch(_POSTGRES_WRITE, [
        orjson.dumps([{"id": t, "n": len(by_thread[t])} for t in threads]).decode(), now,
        messages,
        orjson.dumps([{"thread_id": t, "user_id": u, "ord": o} for t, u, o in reads]).decode(),
        reach,
    ])
    return {str(thread_id): int(base) for thread_id, base in result}


async def write_sqlite(
    conn: BaseDBAsyncClient, by_thread: dict[str, list[Row]], now: datetime, *, reach: bool,
) -> dict[str, int]:
    threads = sorted(by_thread)
    async with in_transaction() as txn:
        # All the threads in one statement: each statement is a hand-off to aiosqlite's thread.
        # Only placeholders are formatted in.
        _, found = await txn.execute_query(
            "UPDATE thread SET last_seq = thread.last_seq + v.column2, last_activity_at = ? "  # noqa: S608
            f"FROM (VALUES {', '.join(['(?, ?)'] * len(threads))}) AS v "
            "WHERE thread.id = v.column1 RETURNING thread.id, thread.last_seq",
            [now, *(x for t in threads for x in (t, len(by_thread[t])))])
        bases = {str(t): int(last) - len(by_thread[t]) for t, last in (tuple(r) for r in found)}
        await txn.execute_many(
            "INSERT INTO message (id, thread_id, seq, kind, sender_id, client_msg_id, type, "
            "body, reply_to, mentions, attachments, content, forwarded_from, deleted, "
            "created_at) VALUES (?, ?, ?, 'message', ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
            [[r.id, t, bases[t] + r.ord, r.draft.sender_id, r.draft.client_msg_id, r.draft.type,
              r.draft.body, r.draft.reply_to, _json(r.draft.mentions),
              _json(r.draft.attachments), _json_or_none(r.draft.content),
              _json_or_none(r.draft.forwarded_from), now]
             for t, rows in by_thread.items() if t in bases for r in rows])
        await txn.execute_many(
            "UPDATE thread_member SET read_seq = ? "
            "WHERE thread_id = ? AND user_id = ? AND read_seq < ?",
            [[bases[t] + ord_, t, sender, bases[t] + ord_] for t, rows in by_thread.items()
             if t in bases for sender, ord_ in _last_by_sender(rows).items()])
        if reach:
            await txn.execute_many(SQLITE_RECORD, [
                [t, bases[t] + len(by_thread[t]), bases[t], bases[t], now, now] for t in bases])
    return bases


def _json(value: object) -> str:
    return orjson.dumps(value).decode()  # the stdlib's encoder was 2% of the embedded CPU


def _json_or_none(value: dict[str, Any] | None) -> str | None:
    return None if value is None else _json(value)
