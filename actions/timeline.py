"""Timeline entries as the contract shows them: a stored message or thread event of the models
becomes the `message`, `message_reply` or `event` object that MQTT publishes and history returns.
"""

from __future__ import annotations

from contract.events import MessageEvent, ThreadLogEvent
from models.clock import epoch_ms
from models.message import EntryKind, Message


def entry_event(entry: Message) -> MessageEvent | ThreadLogEvent:
    created_at = epoch_ms(entry.created_at)
    if entry.kind == EntryKind.EVENT:
        return ThreadLogEvent(
            type="event", thread_id=entry.thread_id, seq=entry.seq, message_id=entry.id,
            created_at=created_at, author=entry.sender_id, logMessageType=entry.type,
            logMessageData=entry.data or {}, logMessageBody=entry.body or "",
        )
    return MessageEvent(
        type="message_reply" if entry.reply_to else "message", thread_id=entry.thread_id,
        seq=entry.seq, message_id=entry.id, created_at=created_at, sender_id=entry.sender_id,
        client_msg_id=entry.client_msg_id, msg_type=entry.type, body=entry.body,
        reply_to=entry.reply_to, mentions=entry.mentions or [],
        attachments=entry.attachments or [],
    )
