"""The answers of message search (docs/design.md section 9): pages of timeline messages, the same
`MessageEvent` objects history returns, newest first, with the cursor of the next page."""

from __future__ import annotations

from contract.events import MessageEvent
from contract.http import Shape


class ThreadSearchPage(Shape):
    """`GET /api/threads/{id}/messages/search`: pass `next_before_seq` as `before_seq` for the
    next page (None: this is the last one)."""

    messages: list[MessageEvent]
    next_before_seq: int | None


class MessageSearchPage(Shape):
    """`GET /api/search/messages`: pass `next_before_id` as `before_id` for the next page (None:
    this is the last one)."""

    messages: list[MessageEvent]
    next_before_id: str | None
