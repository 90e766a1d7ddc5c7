"""The burst index of actions/push.py against the rule it implements, on random bursts: for a
member with read mark `after`, the messages above it from someone else (how many, the newest)
and whether one of those mentions them or "@all"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from actions.push import Burst

USERS = ["a", "b", "c", None]  # None: a message without a sender (a system message)


@dataclass(frozen=True)
class Entry:
    seq: int
    sender_id: str | None
    mentions: Any = field(default_factory=list)


bursts = st.lists(
    st.tuples(st.sampled_from(USERS),
              st.lists(st.sampled_from(["a", "b", "c", "@all"]), max_size=2, unique=True)),
    max_size=12,
).map(lambda rows: [Entry(seq, sender, mentions)
                    for seq, (sender, mentions) in enumerate(rows, start=10)])


@given(bursts, st.sampled_from(["a", "b", "c"]), st.integers(min_value=8, max_value=24))
def test_the_index_answers_as_the_plain_scan(entries: list[Entry], member: str,
                                             after: int) -> None:
    burst = Burst(entries)
    theirs = [e for e in entries if e.seq > after and e.sender_id != member]
    assert burst.count(member, after) == len(theirs)
    assert burst.mentions(member, after) == any(
        member in e.mentions or "@all" in e.mentions for e in theirs)
    others = [e for e in entries if e.sender_id != member]
    if theirs:
        assert burst.newest(member) == others[-1] == theirs[-1]
