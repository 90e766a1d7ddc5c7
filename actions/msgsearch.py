"""Message search as the contract shows it: the matches of models/msgsearch.py, in one thread or
in every thread the caller may read, as pages of timeline `MessageEvent`s. Reads only."""

from __future__ import annotations

from actions.timeline import entry_event
from contract.events import MessageEvent
from contract.msgsearch import MessageSearchPage, ThreadSearchPage
from models import msgsearch
from models.message import Message
from models.msgsearch import SearchQuery


def _events(messages: list[Message]) -> list[MessageEvent]:
    # The models return kind='message' entries only, so each is a MessageEvent.
    return [e for e in map(entry_event, messages) if isinstance(e, MessageEvent)]


async def search_thread(user_id: str, thread_id: str, query: SearchQuery,
                        before_seq: int | None = None) -> ThreadSearchPage:
    hits = await msgsearch.search_thread(user_id, thread_id, query, before_seq)
    return ThreadSearchPage(
        messages=_events(hits.messages),
        next_before_seq=(hits.messages[-1].seq if hits.more and hits.messages
                         else hits.resume_before_seq))


async def search_messages(user_id: str, query: SearchQuery,
                          before_id: str | None = None) -> MessageSearchPage:
    hits = await msgsearch.search_all(user_id, query, before_id)
    return MessageSearchPage(
        messages=_events(hits.messages),
        next_before_id=hits.messages[-1].id if hits.more and hits.messages else None)
