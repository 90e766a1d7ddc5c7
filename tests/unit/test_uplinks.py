"""The in-process uplink queue between the embedded broker and the bridge of `mqim serve`, and
how the bridge groups what it takes into batches (bridge/runner.py `Batches`)."""

from __future__ import annotations

import asyncio

import pytest

from bridge.runner import LINGER_FROM, Batches
from broker.link.uplinks import UplinkQueue


async def test_a_waiting_reader_wakes_and_order_is_kept() -> None:
    queue = UplinkQueue()
    reader = asyncio.ensure_future(queue.next_message())
    await asyncio.sleep(0)
    assert not reader.done()
    queue.put("im/up/alice", b"1")
    queue.put("im/up/bob", b"2")
    first = await asyncio.wait_for(reader, 1)
    assert (first.topic, first.payload) == ("im/up/alice", b"1")
    assert [m.payload for m in queue.take_ready(10)] == [b"2"]
    assert queue.take_ready(10) == []


async def test_take_ready_honours_the_limit() -> None:
    queue = UplinkQueue()
    for i in range(5):
        queue.put("im/up/alice", str(i).encode())
    assert [m.payload for m in queue.take_ready(3)] == [b"0", b"1", b"2"]
    assert [(await queue.next_message()).payload for _ in range(2)] == [b"3", b"4"]


async def test_past_the_bound_new_uplinks_are_dropped_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = UplinkQueue(max_queued=2)
    for i in range(4):
        queue.put("im/up/alice", str(i).encode())
    assert queue.dropped == 2
    assert "dropped 1" in caplog.text
    assert [m.payload for m in queue.take_ready(10)] == [b"0", b"1"]
    queue.put("im/up/alice", b"4")  # room again
    assert (await queue.next_message()).payload == b"4"


async def test_past_the_byte_bound_new_uplinks_are_dropped_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = UplinkQueue(max_bytes=10)
    queue.put("im/up/alice", b"12345")
    queue.put("im/up/alice", b"1234")
    queue.put("im/up/alice", b"12")  # 11 bytes: over the bound
    assert (queue.dropped, queue.queued_bytes) == (1, 9)
    assert "dropped 1" in caplog.text
    queue.put("im/up/alice", b"1")  # exactly at the bound
    assert [m.payload for m in queue.take_ready(1)] == [b"12345"]
    assert queue.queued_bytes == 5
    queue.put("im/up/alice", b"12345")  # room again
    assert [(await queue.next_message()).payload for _ in range(3)] == [b"1234", b"1", b"12345"]
    assert (queue.dropped, queue.queued_bytes) == (1, 0)


async def test_one_payload_over_the_byte_bound_is_dropped_even_when_the_queue_is_empty() -> None:
    queue = UplinkQueue(max_bytes=4)
    queue.put("im/up/alice", b"12345")
    assert (queue.dropped, queue.queued_bytes, queue.take_ready(10)) == (1, 0, [])


@pytest.mark.parametrize("bound", ["count", "bytes"])
async def test_a_flooding_sender_loses_only_its_own_uplinks(bound: str) -> None:
    """One sender over its share of the queue is dropped alone: other users' uplinks still get
    in, and the flooder's share frees as the bridge takes them."""
    queue = (UplinkQueue(max_per_sender=3) if bound == "count"
             else UplinkQueue(max_bytes_per_sender=12))
    for _ in range(10):
        queue.put("im/up/mallory", b"flood")
    queue.put("im/up/alice", b"hi")
    assert queue.dropped == (7 if bound == "count" else 8)
    taken = [(m.topic, m.payload) for m in queue.take_ready(100)]
    assert taken[-1] == ("im/up/alice", b"hi")
    assert [t for t, _ in taken].count("im/up/mallory") == (3 if bound == "count" else 2)
    queue.put("im/up/mallory", b"again")  # its share is free once taken
    assert (await queue.next_message()).payload == b"again"
    assert queue.queued_bytes == 0


async def test_room_waits_for_the_bridge_to_take_that_senders_uplinks() -> None:
    queue = UplinkQueue()
    for n in range(3):
        queue.put("im/up/flood", b"x%d" % n)
    queue.put("im/up/other", b"y")
    await asyncio.wait_for(queue.room("im/up/other", 3), 1)  # another sender is not held
    waiting = asyncio.ensure_future(queue.room("im/up/flood", 3))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # 3 queued: the flooding sender waits
    assert [u.payload for u in queue.take_ready(1)] == [b"x0"]
    await asyncio.wait_for(waiting, 1)  # woken by the take, not by a poll
    assert queue.backlog("im/up/flood") == 2


async def test_without_a_backlog_nothing_waits_for_company() -> None:
    """A lone uplink at a quiet time, or a few queued at a rate the bridge keeps up with, are
    stored at once, whatever the linger (a minute here: wait_for would time out)."""
    queue = UplinkQueue()
    batches = Batches(queue, size=256, linger_ms=60_000)
    queue.put("im/up/alice", b"1")
    assert [m.payload for m in await asyncio.wait_for(batches.next(), 5)] == [b"1"]
    for i in range(LINGER_FROM - 1):
        queue.put("im/up/alice", f"a{i}".encode())
    assert len(await asyncio.wait_for(batches.next(), 5)) == LINGER_FROM - 1


async def test_a_backlog_waits_for_more_and_a_full_batch_does_not() -> None:
    queue = UplinkQueue()
    batches = Batches(queue, size=4, linger_ms=300, linger_from=2)
    for i in range(2):
        queue.put("im/up/alice", f"a{i}".encode())
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, queue.put, "im/up/carol", b"c0")  # arrives while the bridge lingers
    assert [m.payload for m in await asyncio.wait_for(batches.next(), 5)] == [
        b"a0", b"a1", b"c0"]
    # A full batch goes at once: with a linger of a minute, wait_for would time out otherwise.
    full = Batches(queue, size=4, linger_ms=60_000, linger_from=2)
    for i in range(4):
        queue.put("im/up/dave", f"e{i}".encode())
    assert len(await asyncio.wait_for(full.next(), 5)) == 4
