"""The shapes of read state and receipts (docs/design.md section 10): the `delivered` op's ack
and `POST …/delivered`, who read a message, and what `POST /api/threads/read-all` moved.

Receipts hold user ids only; they are derived from each member's read and delivered positions,
never stored per message.
"""

from __future__ import annotations

from contract.http import Shape


class DeliveredResult(Shape):
    """POST …/delivered and the `delivered` op's ack: the caller's delivered mark after it."""

    thread_id: str
    delivered_seq: int


class MessageReceipts(Shape):
    """GET …/messages/{mid}/receipts: the message's recipients (current members who were in the
    thread when it was sent, its sender excluded) by how far it reached them. Whoever read it
    is in `read_by` and in `delivered_to`; `pending` has the others."""

    read_by: list[str]
    delivered_to: list[str]
    pending: list[str]


class ReadAllMoved(Shape):
    """POST /api/threads/read-all: one per thread whose read mark moved."""

    thread_id: str
    read_seq: int
