"""`models.append.append_messages` called directly, on SQLite and PostgreSQL: the batch edge cases
the end-to-end tests reach only by chance. A batch mixes threads, senders, retries and refusals;
every draft gets its own answer, a refusal never costs the good drafts beside it, and each
(sender, client_msg_id) is stored at most once, also when two writers race for it.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from contract.errors import (
    BlockedError,
    ClientMsgIdConflictError,
    ContentInvalidError,
    MessageNotFoundError,
    MqimError,
    NotAMemberError,
    ThreadNotFoundError,
)
from contract.fields import CLIENT_MSG_ID_MAX
from models.membership import remove_member
from models.message import Appended, AppendResult, Message
from models.readstate import mark_read, sync_state
from tests.helpers import unique_id
from tests.models.builders import (
    MAX_BODY_CHARS,
    append,
    assert_gapless,
    block,
    draft,
    last_seq,
    messages_by,
    new_direct,
    new_group,
    new_users,
    read_seq,
    stored,
    timeline_seqs,
)

pytestmark = pytest.mark.usefixtures("database")


def refused(result: AppendResult, error: type[MqimError], number: int) -> MqimError:
    assert isinstance(result, error), result
    assert result.number == number
    return result


async def test_one_batch_across_threads_numbers_each_thread_from_its_own_last_seq() -> None:
    alice, bob = await new_users(2)
    first, second = await new_group(alice, bob), await new_group(bob, alice)
    batch = [draft(alice, first), draft(bob, second), draft(bob, first), draft(alice, second),
             draft(alice, first)]
    entries = [stored(r) for r in await append(batch)]
    # Seq 1 of each group is its creation event; the batch's rows follow in draft order.
    assert [(e.thread_id, e.seq) for e in entries] == [
        (first, 2), (second, 2), (first, 3), (second, 3), (first, 4)]
    assert [e.client_msg_id for e in entries] == [d.client_msg_id for d in batch]
    assert await assert_gapless(first) == 4
    assert await assert_gapless(second) == 3


async def test_the_same_client_msg_id_twice_in_one_batch_and_thread_is_one_message() -> None:
    alice, bob = await new_users(2)
    thread = await new_group(alice, bob)
    one, two, again = (draft(alice, thread, "same", body="first"), draft(bob, thread),
                       draft(alice, thread, "same", body="second"))
    results = await append([one, two, again])
    original = stored(results[0])
    assert isinstance(results[2], Appended)
    assert results[2].duplicate
    assert results[2].entry.id == original.id
    assert results[2].entry.seq == original.seq
    assert stored(results[1]).seq == original.seq + 1
    assert [m.body for m in await messages_by(alice, "same")] == ["first"]
    assert await assert_gapless(thread) == 3


async def test_the_same_client_msg_id_twice_in_one_batch_in_another_thread_is_4002() -> None:
    alice, bob = await new_users(2)
    first, second = await new_group(alice, bob), await new_group(alice, bob)
    results = await append([draft(alice, first, "same"), draft(alice, second, "same"),
                            draft(alice, second)])
    original = stored(results[0])
    refused(results[1], ClientMsgIdConflictError, 4002)
    assert stored(results[2]).seq == 2  # the conflict took no seq in the second thread
    assert [m.id for m in await messages_by(alice, "same")] == [original.id]
    assert await assert_gapless(first) == 2
    assert await assert_gapless(second) == 2


async def test_a_client_msg_id_is_per_sender() -> None:
    alice, bob = await new_users(2)
    thread = await new_group(alice, bob)
    results = await append([draft(alice, thread, "same"), draft(bob, thread, "same")])
    assert stored(results[0]).id != stored(results[1]).id
    assert await assert_gapless(thread) == 3


async def test_a_refused_draft_does_not_use_up_its_client_msg_id() -> None:
    alice, bob, carol = await new_users(3)
    theirs, ours = await new_group(bob, carol), await new_group(alice, bob)
    results = await append([draft(alice, ours, "same", body=" "), draft(alice, theirs, "same"),
                            draft(alice, ours, "same")])
    refused(results[0], ContentInvalidError, 4003)
    refused(results[1], NotAMemberError, 3003)
    assert stored(results[2]).seq == 2
    assert await last_seq(theirs) == 1


async def test_refusals_of_every_kind_next_to_good_drafts_that_are_all_stored() -> None:
    alice, bob, carol, dave = await new_users(4)
    group = await new_group(alice, bob)
    outsiders = await new_group(carol, dave)
    direct = await new_direct(alice, carol)  # carol blocks alice below
    other_direct = await new_direct(alice, dave)  # alice blocks dave below
    [earlier, elsewhere] = [stored(r) for r in await append([draft(bob, group),
                                                             draft(carol, outsiders)])]
    await block(carol, alice)
    await block(alice, dave)
    event = await Message.get(thread_id=group, seq=1)  # the group's creation event
    good = [draft(alice, group, body="g1"), draft(bob, group, reply_to=earlier.id),
            draft(alice, group, body="g3", mentions=[bob]),
            draft(bob, group, type="image", body=None, attachments=[{"url": "https://x/y"}])]
    batch = [
        good[0],
        draft(alice, "t-does-not-exist"),
        draft(alice, outsiders),
        good[1],
        draft(alice, direct),
        draft(alice, other_direct),  # the blocker cannot write either
        draft(alice, group, reply_to="m-does-not-exist"),
        draft(alice, group, reply_to=elsewhere.id),
        draft(alice, group, reply_to=event.id),
        good[2],
        draft(alice, group, body="   "),
        draft(alice, group, type="hologram"),
        draft(alice, group, body="x" * (MAX_BODY_CHARS + 1)),
        draft(alice, group, body="nul \0 inside"),
        draft(alice, group, "c" * (CLIENT_MSG_ID_MAX + 1)),
        draft(alice, group, "tab\there"),
        draft(alice, group, type="image", body=None),
        good[3],
    ]
    results = await append(batch)
    entries = [stored(results[batch.index(d)]) for d in good]
    assert [e.seq for e in entries] == [3, 4, 5, 6]  # 1 created, 2 bob's earlier message
    assert [e.body for e in entries] == ["g1", "hello", "g3", None]
    assert entries[1].reply_to == earlier.id
    assert entries[2].mentions == [bob]
    assert entries[3].attachments == [{"url": "https://x/y"}]
    refused(results[1], ThreadNotFoundError, 3001)
    refused(results[2], NotAMemberError, 3003)
    assert "has blocked you" in refused(results[4], BlockedError, 1009).msg
    assert "you blocked" in refused(results[5], BlockedError, 1009).msg
    for index in (6, 7, 8):  # unknown, in another thread, an event rather than a message
        refused(results[index], MessageNotFoundError, 4001)
    for index in range(10, 17):
        refused(results[index], ContentInvalidError, 4003)
    assert await assert_gapless(group) == 6
    assert await last_seq(outsiders) == 2
    assert await timeline_seqs(direct) == []
    assert await timeline_seqs(other_direct) == []


async def test_a_block_refuses_both_users_of_the_direct_thread_and_no_group() -> None:
    alice, bob = await new_users(2)
    direct, group = await new_direct(alice, bob), await new_group(alice, bob)
    await block(bob, alice)
    results = await append([draft(alice, direct), draft(bob, direct), draft(alice, group),
                            draft(bob, group)])
    refused(results[0], BlockedError, 1009)
    refused(results[1], BlockedError, 1009)
    assert [stored(r).seq for r in results[2:]] == [2, 3]


async def test_a_retry_in_a_later_batch_answers_the_stored_message() -> None:
    alice, bob = await new_users(2)
    thread = await new_group(alice, bob)
    original = stored((await append([draft(alice, thread, "once", body="first")]))[0])
    _ = await append([draft(bob, thread)])
    read_before = await read_seq(thread, alice)
    # The retry's content is ignored: the stored message is the answer.
    results = await append([draft(alice, thread, "once", body="changed"), draft(alice, thread)])
    retry = results[0]
    assert isinstance(retry, Appended)
    assert retry.duplicate
    assert (retry.entry.id, retry.entry.seq, retry.entry.body) == (original.id, original.seq,
                                                                   "first")
    assert stored(results[1]).seq == 4
    assert len(await messages_by(alice, "once")) == 1
    assert await read_seq(thread, alice) == 4 > read_before
    assert await assert_gapless(thread) == 4


async def test_a_retry_in_a_later_batch_in_another_thread_is_4002() -> None:
    alice, bob = await new_users(2)
    first, second = await new_group(alice, bob), await new_group(alice, bob)
    original = stored((await append([draft(alice, first, "once")]))[0])
    results = await append([draft(alice, second, "once"), draft(alice, first, "once")])
    refused(results[0], ClientMsgIdConflictError, 4002)
    assert isinstance(results[1], Appended)
    assert results[1].duplicate
    assert results[1].entry.id == original.id
    assert await last_seq(second) == 1


async def test_a_retry_by_a_removed_member_is_refused_not_answered() -> None:
    alice, bob = await new_users(2)
    thread = await new_group(alice, bob)
    _ = stored((await append([draft(bob, thread, "once")]))[0])
    await remove_member(alice, thread, bob)
    refused((await append([draft(bob, thread, "once")]))[0], NotAMemberError, 3003)


async def test_read_seq_advances_to_each_senders_last_message_of_the_batch() -> None:
    alice, bob, carol = await new_users(3)
    thread = await new_group(alice, bob, carol)
    batch = [draft(alice, thread), draft(bob, thread), draft(alice, thread), draft(bob, thread),
             draft(alice, thread)]
    entries = [stored(r) for r in await append(batch)]
    assert [e.seq for e in entries] == [2, 3, 4, 5, 6]
    assert await read_seq(thread, alice) == 6
    assert await read_seq(thread, bob) == 5
    assert await read_seq(thread, carol) == 1  # the group's creation, where she joined
    counts = {(user, c.thread_id): c for user in (alice, bob, carol)
              for c in await sync_state(user)}
    # Only the others' messages after one's read_seq are unread; one's own never are.
    assert counts[(alice, thread)].unread == 0
    assert counts[(bob, thread)].unread == 1
    assert counts[(carol, thread)].unread == 5
    # A read mark below a sender's own message does not move read_seq back.
    mark = await mark_read(alice, thread, 2)
    assert (mark.read_seq, mark.advanced) == (6, False)
    # Nor does a retry of an earlier message.
    retry = (await append([draft(bob, thread, entries[1].client_msg_id)]))[0]
    assert isinstance(retry, Appended)
    assert retry.duplicate
    assert await read_seq(thread, bob) == 5


async def test_concurrent_batches_with_the_same_client_msg_ids_store_each_draft_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two writers (two tasks; on PostgreSQL two pooled connections) send overlapping batches.
    When the second one's read misses the first one's rows, its write hits the unique
    constraint and it redoes its batch one draft at a time: each draft is stored once, the
    shared ones answered to both, the loser's own ones stored too. Which writer reads first is
    up to the scheduler, so the race is run until the redo has happened a few times."""
    caplog.set_level(logging.INFO, logger="models.append")
    alice, bob = await new_users(2)
    redone = 0
    for _ in range(40):
        thread, other = await new_group(alice, bob), await new_group(alice, bob)
        round_ = unique_id("r")
        shared = [draft(alice, thread, f"{round_}-{i}") for i in range(6)]
        # The last shared id also goes to the other thread in the second batch: a conflict.
        left = [*shared, draft(alice, thread), draft(bob, thread)]
        right = [draft(alice, other), *reversed(shared), draft(alice, other, f"{round_}-5"),
                 draft(bob, other)]
        caplog.clear()
        results_left, results_right = await asyncio.gather(append(left), append(right))
        redone += sum("retrying one by one" in r.getMessage() for r in caplog.records)
        by_id: dict[str, list[Appended]] = {}
        for draft_, result in [*zip(left, results_left, strict=True),
                               *zip(right, results_right, strict=True)]:
            if draft_.thread_id == other and draft_.client_msg_id == f"{round_}-5":
                refused(result, ClientMsgIdConflictError, 4002)
                continue
            assert isinstance(result, Appended), result
            assert result.entry.thread_id == draft_.thread_id
            by_id.setdefault(result.entry.id, []).append(result)
        for copies in by_id.values():
            # One fresh store per message; its other answers are duplicates of the same row.
            assert sum(not c.duplicate for c in copies) == 1
            assert len({(c.entry.seq, c.entry.client_msg_id) for c in copies}) == 1
        assert len(by_id) == 6 + 2 + 2
        for d in shared:
            assert len(await messages_by(alice, d.client_msg_id)) == 1
        assert await assert_gapless(thread) == 1 + 6 + 2
        assert await assert_gapless(other) == 1 + 2
        if redone >= 3:
            break
    assert redone, "the two batches never raced into the unique constraint"
