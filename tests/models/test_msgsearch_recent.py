"""On PostgreSQL a search first walks the newest RECENT_WINDOW entries, then asks the trigram
index for the rest below them (models/msgsearch.py). Whatever the window, the pages must be the
same: every match, newest first, none twice, no unsent message, the filters and the reader's
range kept; and across threads nothing of a thread the reader was never in. Each case runs with a
window of 3 entries (most pages span the walk and the index) and one larger than the data, and
is checked against a plain scan in Python. (On SQLite the window plays no part: the same checks.)
"""

from __future__ import annotations

import pytest

from models import msgsearch
from models.message import EntryKind, Message
from models.msgsearch import Hits, SearchQuery, search_all, search_thread
from tests.models.builders import append, draft, new_group, new_users, stored

pytestmark = pytest.mark.usefixtures("database")

# Case, spaces across words, and LIKE's own characters (which must match only themselves).
BODIES = ["alpha beta", "ALPHA gamma", "beta alpha", "50% off", "50 off", "a_b c", "axb c",
          "back\\slash", "Пример alpha", "你好世界 alpha", "gamma"]
QUERIES = ["alpha", "pha be", "a g", "50%", "a_b", "\\sl", "你好世", "пример", "zzz"]


async def _thread_pages(user: str, thread: str, query: SearchQuery) -> list[int]:
    seqs: list[int] = []
    before: int | None = None
    for _ in range(100):
        hits = await search_thread(user, thread, query, before)
        seqs += [m.seq for m in hits.messages]
        if not hits.more:
            return seqs
        before = hits.messages[-1].seq
    raise AssertionError("paging did not end")


async def _global_pages(user: str, query: SearchQuery) -> list[str]:
    ids: list[str] = []
    before: str | None = None
    for _ in range(100):
        hits: Hits = await search_all(user, query, before)
        ids += [m.id for m in hits.messages]
        if not hits.more:
            return ids
        before = hits.messages[-1].id
    raise AssertionError("paging did not end")


def _holds(body: str | None, text: str) -> bool:
    return body is not None and text.lower() in body.lower()


async def test_thread_and_global_pages_do_not_depend_on_the_window(
        monkeypatch: pytest.MonkeyPatch) -> None:
    owner, other, stranger = await new_users(3)
    thread = await new_group(owner, other)
    second = await new_group(other, owner)
    elsewhere = await new_group(stranger)  # owner was never in it
    for target in (thread, second, elsewhere):
        for round_ in range(3):
            await append([draft(other if (i + round_) % 3 else owner, target, body=body)
                          for i, body in enumerate(BODIES)])
            if target == elsewhere:
                await append([draft(stranger, target, body=b) for b in BODIES])
    # Unsent: the row stays as a tombstone, body NULL (as models/msgactions.py leaves it).
    unsent = [m.id for m in await Message.filter(thread_id=thread, kind=EntryKind.MESSAGE)
              .order_by("-seq").limit(4)]
    await Message.filter(id__in=unsent).update(body=None, deleted=True)
    rows = list(await Message.filter(thread_id=thread, kind=EntryKind.MESSAGE,
                                     deleted=False).order_by("-seq"))
    readable = list(await Message.filter(thread_id__in=[thread, second],
                                         kind=EntryKind.MESSAGE, deleted=False))

    for text in QUERIES:
        for sender in (None, other):
            query = SearchQuery(text=text, sender_id=sender, limit=4)
            expected = [m.seq for m in rows
                        if _holds(m.body, text) and sender in (None, m.sender_id)]
            wanted = {m.id for m in readable
                      if _holds(m.body, text) and sender in (None, m.sender_id)}
            found: list[tuple[list[int], list[str]]] = []
            for window in (3, 10**6):
                monkeypatch.setattr(msgsearch, "RECENT_WINDOW", window)
                found.append((await _thread_pages(owner, thread, query),
                              await _global_pages(owner, query)))
            assert found[0] == found[1], (text, sender)
            seqs, ids = found[0]
            assert seqs == expected, (text, sender)
            assert len(ids) == len(set(ids)), (text, sender)
            assert set(ids) == wanted, (text, sender)


async def test_an_unsent_message_is_never_found_even_with_its_text_left(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`deleted` alone keeps a message out, should a body ever outlive its unsend."""
    owner, other = await new_users(2)
    thread = await new_group(owner, other)
    kept = stored((await append([draft(other, thread, body="tombstone text")]))[0])
    gone = stored((await append([draft(other, thread, body="tombstone text")]))[0])
    await Message.filter(id=gone.id).update(deleted=True)
    for window in (1, 10**6):
        monkeypatch.setattr(msgsearch, "RECENT_WINDOW", window)
        page = await search_thread(owner, thread, SearchQuery(text="tombstone"))
        assert [m.id for m in page.messages] == [kept.id]
        everywhere = await search_all(owner, SearchQuery(text="tombstone"))
        assert [m.id for m in everywhere.messages] == [kept.id]
