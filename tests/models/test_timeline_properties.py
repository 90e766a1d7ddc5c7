"""Timeline invariants under random interleavings (hypothesis), on SQLite and PostgreSQL.

Four users run random programs at once, one asyncio task each (on PostgreSQL each query takes
its own pooled connection, so the writes really race): batches of sends that reuse a few
client_msg_ids (retries, in the same thread or another), read marks, and membership changes by
the groups' owner or by members leaving. Checked while they run and once they are done:

- the seqs of every thread are exactly 1..last_seq (messages and events, no gap, no repeat);
- a retry never stores twice: one stored row per (sender, client_msg_id), answered to every
  retry in its thread, refused with 4002 in any other, and exactly one answer is the fresh store;
- read_seq never moves back, never passes max_seq, and covers the reader's own messages;
- unread counts exactly the others' messages after read_seq: one's own never count;
- once a removal or a leave has returned, that user's sends and read marks are refused.

Removed users are never added back, so each (user, thread) has at most one membership row and
"never moves back" needs no epochs. The examples are small and few, to keep this module within
a few seconds per database.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from contract.errors import (
    ClientMsgIdConflictError,
    ContentInvalidError,
    NotAMemberError,
)
from models.membership import add_members, remove_member
from models.message import Appended, AppendResult, Draft, EntryKind, Message
from models.readstate import mark_read, sync_state
from models.thread import Member
from tests.models.builders import (
    append,
    assert_gapless,
    draft,
    new_direct,
    new_group,
    new_users,
)

pytestmark = pytest.mark.usefixtures("database")

OWNER, FIRST, SECOND, LATECOMER = range(4)
GROUPS = (0, 1)  # both owned by OWNER, with FIRST and SECOND in them; LATECOMER may be added
DIRECT = 2  # OWNER and FIRST
THREADS = (*GROUPS, DIRECT)
CLIENT_MSG_IDS = 3  # per user: few enough that retries (and 4002s) are common


@dataclass(frozen=True)
class Send:
    """One append_messages call: (thread, client_msg_id index, content invalid) per draft."""

    drafts: tuple[tuple[int, int, bool], ...]


@dataclass(frozen=True)
class Read:
    thread: int
    seq: int


@dataclass(frozen=True)
class Remove:
    """The owner removes a user from a group."""

    user: int
    group: int


@dataclass(frozen=True)
class Add:
    """The owner adds the latecomer to a group (once: removed users never come back)."""

    group: int


@dataclass(frozen=True)
class Leave:
    group: int


@dataclass(frozen=True)
class Pause:
    """Yield to the other tasks a few times, to vary the interleaving."""

    turns: int


Op = Send | Read | Remove | Add | Leave | Pause

sends = st.builds(Send, st.lists(
    st.tuples(st.sampled_from(THREADS), st.integers(0, CLIENT_MSG_IDS - 1),
              st.integers(0, 7).map(lambda n: n == 0)),
    min_size=1, max_size=3).map(tuple))
# Sends twice as likely as the rest: they are what the invariants are about.
common_ops = (sends | sends | st.builds(Read, st.sampled_from(THREADS), st.integers(0, 12))
              | st.builds(Pause, st.integers(1, 3)))
owner_ops = (common_ops
             | st.builds(Remove, st.sampled_from([FIRST, SECOND, LATECOMER]),
                         st.sampled_from(GROUPS))
             | st.builds(Add, st.sampled_from(GROUPS)))
member_ops = common_ops | st.builds(Leave, st.sampled_from(GROUPS))
programs = st.tuples(*(st.lists(ops, min_size=1, max_size=8)
                       for ops in (owner_ops, member_ops, member_ops, common_ops)))


@dataclass(frozen=True)
class SentDraft:
    draft: Draft
    bad: bool
    result: AppendResult
    started: int  # the tick when its append_messages call began


@dataclass
class Run:
    """What the tasks did and saw, in the order of one logical clock."""

    users: list[str]
    threads: list[str]
    clock: itertools.count[int] = field(default_factory=itertools.count)
    sent: list[SentDraft] = field(default_factory=list)
    # (user, thread) -> tick when a removal or leave began / returned
    leaving: dict[tuple[str, str], int] = field(default_factory=dict)
    gone: dict[tuple[str, str], int] = field(default_factory=dict)
    added: set[str] = field(default_factory=set)  # threads the latecomer was added to
    seen_read_seq: dict[tuple[str, str], list[int]] = field(
        default_factory=lambda: defaultdict(list))

    def tick(self) -> int:
        return next(self.clock)

    def may_be_outside(self, user: str, thread: str) -> bool:
        """Whether a NotAMemberError may be right: the user is not one of the thread's first
        members, or their removal (or leave) has begun."""
        index, where = self.users.index(user), self.threads.index(thread)
        return ((user, thread) in self.leaving or index == LATECOMER
                or (where == DIRECT and index not in (OWNER, FIRST)))

    def must_be_outside(self, user: str, thread: str, started: int) -> bool:
        """Whether the user's removal had returned before the call began."""
        return self.gone.get((user, thread), started) < started


async def observe(run: Run, user: str, just_sent: list[Appended]) -> None:
    """The user's sync view right after one of their operations: read_seq only moves forward,
    stays within max_seq, and covers what they just had stored."""
    for counts in await sync_state(user):
        history = run.seen_read_seq[(user, counts.thread_id)]
        assert not history or counts.read_seq >= history[-1], (history, counts)
        history.append(counts.read_seq)
        assert 0 <= counts.read_seq <= counts.max_seq
        # Not bounded by max_seq - read_seq while others write: sync_state reads max_seq and
        # counts unread in two queries, so messages stored in between are counted.
        assert counts.unread >= 0
        for result in just_sent:
            if result.entry.thread_id == counts.thread_id:
                assert counts.read_seq >= result.entry.seq


async def perform(run: Run, actor: int, op: Op) -> None:
    user = run.users[actor]
    just_sent: list[Appended] = []
    if isinstance(op, Send):
        batch = [(draft(user, run.threads[t], f"c{cmid}", body=" " if bad else f"{t}/{cmid}"),
                  bad) for t, cmid, bad in op.drafts]
        started = run.tick()
        results = await append([d for d, _ in batch])
        for (sent, bad), result in zip(batch, results, strict=True):
            run.sent.append(SentDraft(sent, bad, result, started))
            if isinstance(result, Appended):
                just_sent.append(result)
    elif isinstance(op, Read):
        thread = run.threads[op.thread]
        started = run.tick()
        try:
            mark = await mark_read(user, thread, op.seq)
        except NotAMemberError:
            assert run.may_be_outside(user, thread)
        else:
            assert not run.must_be_outside(user, thread, started)
            history = run.seen_read_seq[(user, thread)]
            assert not history or mark.read_seq >= history[-1], (history, mark)
            history.append(mark.read_seq)
            assert mark.read_seq <= op.seq or not mark.advanced
    elif isinstance(op, Remove | Leave):
        target = run.users[op.user] if isinstance(op, Remove) else user
        thread = run.threads[op.group]
        run.leaving.setdefault((target, thread), run.tick())
        with contextlib.suppress(NotAMemberError):  # not in it (any more, or yet)
            _ = await remove_member(user, thread, target)
        run.gone.setdefault((target, thread), run.tick())
    elif isinstance(op, Add):
        thread = run.threads[op.group]
        latecomer = run.users[LATECOMER]
        if thread not in run.added and (latecomer, thread) not in run.leaving:
            run.added.add(thread)
            await add_members(user, thread, [latecomer])
    else:
        for _ in range(op.turns):
            await asyncio.sleep(0)
    await observe(run, user, just_sent)


async def play(run: Run, actor: int, ops: list[Op]) -> None:
    for op in ops:
        await perform(run, actor, op)


async def check_sends(run: Run) -> None:
    stored = {(m.sender_id, m.client_msg_id): m for m in await Message.filter(
        thread_id__in=run.threads, kind=EntryKind.MESSAGE)}
    fresh: dict[str, int] = defaultdict(int)
    for sent in run.sent:
        d, result = sent.draft, sent.result
        earlier = stored.get((d.sender_id, d.client_msg_id))
        event(type(result).__name__ if not isinstance(result, Appended)
              else "duplicate" if result.duplicate else "stored")
        if sent.bad:
            assert isinstance(result, ContentInvalidError), result
        elif isinstance(result, Appended):
            assert earlier is not None
            assert not run.must_be_outside(d.sender_id, d.thread_id, sent.started)
            assert (result.entry.id, result.entry.seq) == (earlier.id, earlier.seq)
            assert result.entry.thread_id == d.thread_id
            fresh[earlier.id] += not result.duplicate
        elif isinstance(result, ClientMsgIdConflictError):
            assert earlier is not None
            assert earlier.thread_id != d.thread_id
        elif isinstance(result, NotAMemberError):
            assert run.may_be_outside(d.sender_id, d.thread_id), d
            if run.must_be_outside(d.sender_id, d.thread_id, sent.started):
                event("refused after a removal")
        else:
            raise AssertionError(f"unexpected refusal {result!r} of {d}")
    # Every stored message was one send's fresh store; every retry was answered with it.
    assert dict(fresh) == {m.id: 1 for m in stored.values()}


async def check_read_state(run: Run) -> None:
    entries = list(await Message.filter(thread_id__in=run.threads, kind=EntryKind.MESSAGE))
    # A direct thread opened by a non-friend is a message request on the other side: no unread.
    requests = {(str(t), str(u)) for t, u in await Member.filter(
        thread_id__in=run.threads, is_request=True).values_list("thread_id", "user_id")}
    for user in run.users:
        for counts in await sync_state(user):
            if (counts.thread_id, user) in requests:
                assert counts.unread == 0, (user, counts)
                continue
            others = [m for m in entries if m.thread_id == counts.thread_id
                      and m.seq > counts.read_seq and m.sender_id != user]
            assert counts.unread == len(others), (user, counts)
            own = [m.seq for m in entries if m.thread_id == counts.thread_id
                   and m.sender_id == user]
            assert counts.read_seq >= max(own, default=0)


async def check_gone_stay_out(run: Run) -> None:
    """Everyone removed (or who left, or was never added) is refused now."""
    for user, thread in run.gone:
        [result] = await append([draft(user, thread)])
        assert isinstance(result, NotAMemberError), result
        with pytest.raises(NotAMemberError):
            _ = await mark_read(user, thread, 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs)
async def test_timeline_invariants_hold_under_concurrent_writers(
    program: tuple[list[Op], list[Op], list[Op], list[Op]],
) -> None:
    users = await new_users(4)
    owner, first, second, _ = users
    threads = [await new_group(owner, first, second), await new_group(owner, first, second),
               await new_direct(owner, first)]
    run = Run(users, threads)
    await asyncio.gather(*(play(run, actor, list(ops)) for actor, ops in enumerate(program)))
    for thread in threads:
        await assert_gapless(thread)
    await check_sends(run)
    await check_read_state(run)
    await check_gone_stay_out(run)

