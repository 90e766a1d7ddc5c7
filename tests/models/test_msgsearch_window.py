"""A 1 or 2 character thread search cannot use a trigram index, so it walks the thread: each page
walks at most SHORT_SCAN_WINDOW entries, and a page that stopped at the window says where to go
on, so a rare character in a huge thread costs bounded scans, never the whole thread at once."""

from __future__ import annotations

import pytest

from models.msgsearch import SHORT_SCAN_WINDOW, SearchQuery, search_thread
from tests.models.builders import append, draft, new_group, new_users, stored

pytestmark = pytest.mark.usefixtures("database")


async def test_short_query_pages_through_scan_windows() -> None:
    owner, other = await new_users(2)
    thread = await new_group(owner, other)  # seq 1: the group's creation
    needle = stored((await append([draft(other, thread, body="ζ once")]))[0]).seq
    filler = SHORT_SCAN_WINDOW + 30
    for start in range(0, filler, 2000):
        await append([draft(other, thread, body="x") for _ in range(min(2000, filler - start))])
    top = needle + filler

    first = await search_thread(owner, thread, SearchQuery(text="ζ"))
    assert first.messages == []
    assert not first.more
    assert first.resume_before_seq == top - SHORT_SCAN_WINDOW + 1

    second = await search_thread(owner, thread, SearchQuery(text="ζ"),
                                 before_seq=first.resume_before_seq)
    assert [m.seq for m in second.messages] == [needle]
    assert second.resume_before_seq is None  # this window reached the thread's start

    # A query of 3 characters or more uses the index and finds it at once.
    assert [m.seq for m in (await search_thread(owner, thread, SearchQuery(text="ζ o"))).messages
            ] == [needle]
