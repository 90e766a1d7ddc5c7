"""Who read a message (`GET /api/threads/{id}/messages/{mid}/receipts`): the rule and the
query are in models/receipts.py; this only shapes the answer. Publishes nothing."""

from __future__ import annotations

from contract.receipts import MessageReceipts
from models.receipts import message_receipts as find_receipts


async def message_receipts(user_id: str, thread_id: str, message_id: str) -> MessageReceipts:
    found = await find_receipts(user_id, thread_id, message_id)
    return MessageReceipts(read_by=found.read_by, delivered_to=found.delivered_to,
                           pending=found.pending)
