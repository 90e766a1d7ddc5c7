"""The worker behind push notifications and webhooks (docs/push.md, docs/webhooks.md).

The message path only records, in the same transaction as the entries, which threads have new
timeline entries (models/reach.py). This worker, in-process in `mqim serve` or alone as
`mqim push`, does the rest, so delivery never slows the message path:

- webhooks, at once: the thread's new entries become `webhook_delivery` rows (the durable
  outbox) in one transaction with the cursor's move, so each entry is recorded exactly once;
  then the outbox is delivered (actions/webhooks.py), in order per hook, with retries;
- push, coalesced: a thread's new entries wait until the thread has been quiet for
  MQIM_PUSH_COALESCE_MS (or, in a thread that never goes quiet, ten times that since they
  began to wait), then each member they concern gets at most one notification for the burst
  (actions/push.py). Push is best effort: a failed push is recorded on its target, not retried.

    tick(settings) -> how much it did (0: nothing was waiting)
    run_reach(settings, stop)  the loop: a tick every POLL_SECONDS, at once again while busy
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from actions import push, webhooks
from config import Settings
from models import reach
from models.clock import utcnow
from models.message import Message
from models.reach import ReachQueue

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.1  # how soon a bot hears of a mention, at most, beyond the delivery itself
BATCH = 50  # threads per step, so one busy pass does not starve the deliveries
PUSH_MAX_WAIT_FACTOR = 10
PUSH_THREADS_AT_ONCE = 8


async def tick(settings: Settings) -> int:
    """One pass: fan out to webhooks, push the quiet threads, deliver the outbox."""
    work = await reach.pending_work()
    if not (work.hooks or work.targets):  # the common case: two plain statements a pass
        await reach.clear()
        done = 0
    else:
        done = await _fan_out(work.hooks) + await _push(settings, work.targets)
        await reach.drop_done()
    return done + (await webhooks.deliver_due(settings) if work.deliveries else 0)


async def _fan_out(active: bool) -> int:
    if not active:  # no hook: move on without reading entries
        await reach.skip_hooks()
        return 0
    rows = await ReachQueue.filter(seq__gt=F("hook_seq")).order_by("updated_at").limit(BATCH)
    for row in rows:
        async with in_transaction() as conn:
            locked = await ReachQueue.filter(thread_id=row.thread_id).using_db(
                conn).select_for_update().first()
            if locked is None or locked.hook_seq >= locked.seq:
                continue
            entries = await Message.filter(
                thread_id=row.thread_id, seq__gt=locked.hook_seq, seq__lte=locked.seq,
            ).using_db(conn).order_by("seq")
            await webhooks.fan_out(conn, row.thread_id, list(entries))
            await ReachQueue.filter(thread_id=row.thread_id).using_db(conn).update(
                hook_seq=locked.seq)
    return len(rows)


async def _push(settings: Settings, targets: bool) -> int:
    if not targets:  # nobody to reach: move on without reading entries
        await reach.skip_push()
        return 0
    now = utcnow()
    quiet = now - timedelta(milliseconds=settings.push_coalesce_ms)
    waited = now - timedelta(milliseconds=settings.push_coalesce_ms * PUSH_MAX_WAIT_FACTOR)
    rows = await ReachQueue.filter(
        Q(updated_at__lte=quiet) | Q(waiting_since__lte=waited), seq__gt=F("push_seq"),
    ).order_by("waiting_since").limit(BATCH)
    # Threads side by side, so one slow push service delays only its own thread's burst.
    gate = asyncio.Semaphore(PUSH_THREADS_AT_ONCE)

    async def one(row: ReachQueue) -> None:
        async with gate:
            entries = await Message.filter(
                thread_id=row.thread_id, seq__gt=row.push_seq, seq__lte=row.seq).order_by("seq")
            try:
                await push.notify(settings, row.thread_id, list(entries))
            except Exception:  # best effort: one thread's failure must not stop the others
                logger.exception("push for thread %s failed; skipped", row.thread_id)
            # Only up to what was read: entries that came meanwhile wait for the next burst.
            await ReachQueue.filter(thread_id=row.thread_id, push_seq=row.push_seq).update(
                push_seq=row.seq, waiting_since=F("updated_at"))

    await asyncio.gather(*(one(row) for row in rows))
    return len(rows)


async def run_reach(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Tick until `stop` is set (or the task is cancelled); a failed tick is logged and the
    next one tries again (the queue and the outbox keep what was not done)."""
    logger.info("push and webhook worker running")
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            busy = await tick(settings)
        except Exception:
            logger.exception("push and webhook worker: a pass failed; trying again")
            busy = 0
        if not busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)
