"""The reach queue (docs/push.md): which threads have timeline entries that the push and webhook
worker has not handled yet. One row per thread, written in the same transaction as the entries
(models/append.py for messages, models/message.allocate_seqs for everything else), so nothing is
lost between a commit and the worker: the worker moves each cursor only after it has recorded
what the entries up to it call for.

    seq       the newest entry of the thread
    hook_seq  entries up to here were fanned out to webhooks (webhook_delivery rows)
    push_seq  entries up to here were considered for push (coalesced: see actions/reach.py)

A row whose cursors both reached `seq` is deleted, so the table holds only threads with work.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise import connections, fields
from tortoise.models import Model


class ReachQueue(Model):
    thread_id = fields.CharField(primary_key=True, max_length=32)
    seq = fields.BigIntField()
    hook_seq = fields.BigIntField()
    push_seq = fields.BigIntField()
    # When `seq` last moved: push waits for a quiet moment to send one notification per burst,
    # but no longer than a while after `waiting_since` (push_seq fell behind), in a busy thread.
    updated_at = fields.DatetimeField()
    waiting_since = fields.DatetimeField()

    class Meta:
        table = "reach_queue"


# The upsert behind every timeline write: a new row starts its cursors at the entries before the
# write (`base`), so only what is new is handled.
# `waiting_since` restarts when the row had been caught up (push_seq at seq) before this write.
SQLITE_RECORD = (
    "INSERT INTO reach_queue (thread_id, seq, hook_seq, push_seq, updated_at, waiting_since) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id) DO UPDATE SET "
    "seq = max(reach_queue.seq, excluded.seq), updated_at = excluded.updated_at, "
    "waiting_since = CASE WHEN reach_queue.push_seq >= reach_queue.seq "
    "THEN excluded.updated_at ELSE reach_queue.waiting_since END")
POSTGRES_RECORD = (
    "INSERT INTO reach_queue (thread_id, seq, hook_seq, push_seq, updated_at, waiting_since) "
    "VALUES ($1, $2, $3, $3, $4, $4) ON CONFLICT (thread_id) DO UPDATE SET "
    "seq = GREATEST(reach_queue.seq, EXCLUDED.seq), updated_at = EXCLUDED.updated_at, "
    "waiting_since = CASE WHEN reach_queue.push_seq >= reach_queue.seq "
    "THEN EXCLUDED.updated_at ELSE reach_queue.waiting_since END")


@dataclass(frozen=True)
class ReachWork:
    """What the worker may have to do, from one statement: is any webhook active, does any
    device have a push target, is any webhook delivery pending."""

    hooks: bool
    targets: bool
    deliveries: bool


# Plain SQL, the same on both dialects: the worker asks this every POLL_SECONDS, and the ORM's
# three `exists()` queries cost ~1 ms of CPU each to build and run, under load beside the bridge.
_WORK = (
    "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM webhook WHERE active LIMIT 1) h), "
    "(SELECT COUNT(*) FROM (SELECT 1 FROM push_target LIMIT 1) t), "
    "(SELECT COUNT(*) FROM (SELECT 1 FROM webhook_delivery WHERE status = 'pending' LIMIT 1) d)")


async def pending_work() -> ReachWork:
    _, rows = await connections.get("default").execute_query(_WORK)
    hooks, targets, deliveries = (int(v) for v in tuple(rows[0]))
    return ReachWork(bool(hooks), bool(targets), bool(deliveries))


# The worker's passes over many rows leave alone those a timeline write holds (on PostgreSQL,
# `FOR UPDATE SKIP LOCKED`; the next pass, POLL_SECONDS later, takes them). A pass locks rows in
# the order it scans them, a batch of messages in thread order: the two deadlocked, and
# PostgreSQL broke the tie after its deadlock_timeout (1 s) by failing one of them, the worker's
# pass or the bridge's batch. SQLite has no row locks: one writer at a time.
async def _unlocked(statement: str, where: str) -> None:
    """`statement` (an UPDATE or DELETE of reach_queue) on the rows matching `where` that no
    transaction holds."""
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        where = (f"{where} AND thread_id IN (SELECT thread_id FROM reach_queue "  # noqa: S608
                 f"WHERE {where} FOR UPDATE SKIP LOCKED)")
    await conn.execute_query(f"{statement} WHERE {where}")


async def clear() -> None:
    """Forget every thread's new entries: with no webhook and no push target there is nobody
    to reach, and a hook or target made later starts from the entries after it."""
    await _unlocked("DELETE FROM reach_queue", "1 = 1")


async def skip_hooks() -> None:
    """No webhook is active: move every thread's webhook cursor to its newest entry."""
    await _unlocked("UPDATE reach_queue SET hook_seq = seq", "seq > hook_seq")


async def skip_push() -> None:
    """No device has a push target: move every thread's push cursor to its newest entry."""
    await _unlocked("UPDATE reach_queue SET push_seq = seq", "seq > push_seq")


async def drop_done() -> None:
    """Delete the rows whose cursors both reached their newest entry."""
    await _unlocked("DELETE FROM reach_queue", "hook_seq >= seq AND push_seq >= seq")
