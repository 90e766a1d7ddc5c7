"""Two use cases on the same rows at once, on SQLite and PostgreSQL: a member's send or read mark
racing their removal from the group, and batches of messages racing the push and webhook
worker's passes over the reach queue. Whichever commits first, the other gets a clean answer
(stored before the removal, or NotAMemberError): never a deadlock, never a crash.

The second call's start is swept over the first millisecond, four times over, so that it lands
between each step of the removal's transaction and the next: the window that deadlocked on
PostgreSQL is a fraction of a millisecond wide.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from contract.errors import NotAMemberError
from models import reach
from models.membership import remove_member
from models.message import Appended
from models.readstate import ReadMark, mark_read
from tests.models.builders import append, assert_gapless, draft, new_group, new_users

pytestmark = pytest.mark.usefixtures("database")

T = TypeVar("T")
DELAYS = [step / 20_000 for step in range(20)] * 4  # seconds: 0 to 0.95 ms by 0.05 ms


async def after(delay: float, call: Awaitable[T]) -> T:
    await asyncio.sleep(delay)  # a sweep of start times, not a wait for anything
    return await call


async def test_a_send_racing_its_senders_removal_is_stored_or_refused() -> None:
    for delay in DELAYS:
        owner, member = await new_users(2)
        group = await new_group(owner, member)
        removal, results = await asyncio.gather(
            remove_member(owner, group, member),
            after(delay, append([draft(member, group) for _ in range(3)])),
            return_exceptions=True)
        assert not isinstance(removal, BaseException), (delay, removal)
        assert not isinstance(results, BaseException), (delay, results)
        # One batch: all stored (before the removal's event or just after it, see
        # models/append.py) or all refused.
        assert (all(isinstance(r, Appended) for r in results)
                or all(isinstance(r, NotAMemberError) for r in results)), (delay, results)
        assert await assert_gapless(group) == 2 + sum(isinstance(r, Appended) for r in results)


async def test_a_read_mark_racing_the_readers_removal_is_made_or_refused() -> None:
    for delay in DELAYS:
        owner, member = await new_users(2)
        group = await new_group(owner, member)
        _ = await append([draft(owner, group)])
        outcome = await asyncio.gather(
            remove_member(owner, group, member), after(delay, mark_read(member, group, 2)),
            return_exceptions=True)
        assert not isinstance(outcome[0], BaseException), (delay, outcome)
        mark = outcome[1]
        assert isinstance(mark, ReadMark | NotAMemberError), (delay, mark)


async def test_batches_across_threads_and_the_reach_workers_passes_never_deadlock() -> None:
    """A batch write takes its threads' reach-queue rows in thread order; the worker's passes
    (models/reach.py) take many rows at once, in the order they lie on disk, which is the order
    they were last written in. Batches of different subsets of threads shuffle that order. The
    two used to deadlock on PostgreSQL, which then failed one side after its deadlock_timeout
    (1 s): the worker's pass, or the batch (which the bridge answered with internal errors)."""
    sender, member = await new_users(2)
    groups = [await new_group(sender, member) for _ in range(8)]
    chosen = random.Random(16)  # the same subsets every run
    batches = [chosen.sample(groups, chosen.randint(2, len(groups))) for _ in range(400)]
    writing = True
    passes = 0

    async def worker() -> None:
        nonlocal passes
        while writing:
            await reach.skip_hooks()
            await reach.skip_push()
            if passes % 10 == 9:
                await reach.drop_done()
            passes += 1

    async def writer(mine: list[list[str]]) -> None:
        for batch in mine:
            _ = await append([draft(sender, g) for g in batch])

    async with asyncio.timeout(120):
        passing = asyncio.ensure_future(worker())
        try:
            await asyncio.gather(writer(batches[0::2]), writer(batches[1::2]))
        finally:
            writing = False
            await passing
    await reach.clear()
    assert passes > 0
    for group in groups:
        assert await assert_gapless(group) == 1 + sum(batch.count(group) for batch in batches)
