"""The SDK's per-thread ordering, alone: entries reach the app once and in seq order whether
they come live, repeated, early, or from a catch-up page; holes only where the server says."""

from __future__ import annotations

from mqim_client.events import MessageEvent
from mqim_client.timeline import Entry, Timeline, initial_positions


def entry(seq: int, thread_id: str = "t1") -> MessageEvent:
    return MessageEvent(
        type="message", thread_id=thread_id, seq=seq, message_id=f"m{seq}", created_at=0,
        sender_id="alice", client_msg_id=f"c{seq}", msg_type="text", body=f"b{seq}",
        reply_to=None, mentions=[], attachments=[])


def timeline() -> tuple[Timeline, list[Entry]]:
    delivered: list[Entry] = []
    return Timeline(delivered.append), delivered


def seqs(delivered: list[Entry]) -> list[tuple[str, int]]:
    return [(e.thread_id, e.seq) for e in delivered]


def test_in_order_entries_go_straight_through_and_repeats_are_dropped() -> None:
    line, delivered = timeline()
    line.track("t1", 3)
    for seq in (4, 5, 5, 4, 3, 6):
        assert line.offer(entry(seq)) is False
    assert seqs(delivered) == [("t1", 4), ("t1", 5), ("t1", 6)]
    assert line.duplicates == 3
    assert line.positions() == {"t1": 6}


def test_a_gap_holds_later_entries_until_a_catch_up_fills_it() -> None:
    line, delivered = timeline()
    line.track("t1", 1)
    assert line.offer(entry(4)) is True  # 2 and 3 are missing: catch up
    assert line.offer(entry(5)) is True
    assert line.offer(entry(4)) is False  # a repeat of a held one
    assert delivered == []
    assert line.holding("t1")
    line.fill("t1", [entry(2), entry(3), entry(4)])  # the page ends before 5 arrived there
    assert seqs(delivered) == [("t1", s) for s in (2, 3, 4, 5)]
    assert not line.holding("t1")
    assert line.offer(entry(5)) is False
    assert line.duplicates == 3  # held 4 again, the page's 4 (held), live 5 again


def test_a_page_that_overtakes_what_is_held_drops_the_held_copies() -> None:
    line, delivered = timeline()
    line.track("t1", 0)
    line.offer(entry(3))
    line.fill("t1", [entry(1), entry(2), entry(3), entry(4)])
    assert seqs(delivered) == [("t1", s) for s in (1, 2, 3, 4)]
    assert not line.holding("t1")


def test_the_server_page_is_authoritative_about_holes_it_will_not_show() -> None:
    """Under `joined` history a new member's first readable entry is not seq 1."""
    line, delivered = timeline()
    line.track("t1", 0)
    line.fill("t1", [entry(7), entry(8)])
    assert seqs(delivered) == [("t1", 7), ("t1", 8)]


def test_flush_gives_up_waiting_and_keeps_the_order() -> None:
    line, delivered = timeline()
    line.track("t1", 0)
    line.offer(entry(5))
    line.offer(entry(3))
    line.flush("t1")
    assert seqs(delivered) == [("t1", 3), ("t1", 5)]
    assert line.offer(entry(4)) is False  # too late now: below the position
    assert seqs(delivered) == [("t1", 3), ("t1", 5)]


def test_threads_are_independent_and_untracked_ones_ignored() -> None:
    line, delivered = timeline()
    line.track("t1", 0)
    line.track("t2", 10)
    assert line.track("t1", 99) is False  # an existing position stays
    line.offer(entry(1, "t1"))
    line.offer(entry(11, "t2"))
    assert line.offer(entry(1, "t3")) is False
    line.forget("t2")
    line.offer(entry(12, "t2"))
    line.fill("t2", [entry(13, "t2")])
    line.fill("t1", [entry(2, "t2")])  # a page of another thread is not this thread's
    assert seqs(delivered) == [("t1", 1), ("t2", 11)]
    assert line.tracked() == {"t1"}
    assert line.position("t2") is None


def test_initial_positions_prefer_what_the_app_saved() -> None:
    listed = {"t1": 5, "t2": 9}
    assert initial_positions(listed, {"t1": 2, "t9": 1}, first=True) == {"t1": 2, "t2": 9}
    assert initial_positions(listed, None, first=True) == {"t1": 5, "t2": 9}
    # A thread first seen on a reconnect was joined while away: from its beginning.
    assert initial_positions(listed, {"t1": 2}, first=False) == {"t1": 2, "t2": 0}
