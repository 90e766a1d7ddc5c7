"""Timeline entries as the contract shows them: a stored message, thread event or action entry
of the models becomes the `message`/`message_reply`, `event`, `message_reaction`,
`message_unsend`, `message_edit` or `poll_update` object that MQTT publishes and history returns.

`entry_event` renders a row as stored; history then adds each message's current state
(reactions, reply count, the caller's status: actions/history.py).
"""

from __future__ import annotations

from typing import Any

from contract.events import (
    ForwardedFrom,
    MessageEditEvent,
    MessageEvent,
    MessageReactionEvent,
    MessageUnsendEvent,
    PollUpdateEvent,
    ThreadLogEvent,
    TimelineEvent,
)
from models.clock import epoch_ms
from models.message import EntryKind, Message

_ACTIONS: dict[str, type[MessageReactionEvent | MessageUnsendEvent | MessageEditEvent
                         | PollUpdateEvent]] = {
    "message_reaction": MessageReactionEvent, "message_unsend": MessageUnsendEvent,
    "message_edit": MessageEditEvent, "poll_update": PollUpdateEvent,
}


def entry_event(entry: Message) -> TimelineEvent:
    created_at = epoch_ms(entry.created_at)
    if entry.kind == EntryKind.EVENT:
        return ThreadLogEvent(
            type="event", thread_id=entry.thread_id, seq=entry.seq, message_id=entry.id,
            created_at=created_at, author=entry.sender_id, logMessageType=entry.type,
            logMessageData=entry.data or {}, logMessageBody=entry.body or "",
        )
    if entry.kind == EntryKind.ACTION:
        data: dict[str, Any] = entry.data or {}
        return _ACTIONS[entry.type].model_validate({
            **data, "type": entry.type, "thread_id": entry.thread_id, "seq": entry.seq,
            "created_at": created_at})
    return MessageEvent(
        type="message_reply" if entry.reply_to else "message", thread_id=entry.thread_id,
        seq=entry.seq, message_id=entry.id, created_at=created_at, sender_id=entry.sender_id,
        client_msg_id=entry.client_msg_id, msg_type=entry.type, body=entry.body,
        reply_to=entry.reply_to, mentions=entry.mentions or [],
        attachments=entry.attachments or [], content=entry.content,
        forwarded_from=(ForwardedFrom.model_validate(entry.forwarded_from)
                        if entry.forwarded_from else None),
        edited_at=epoch_ms(entry.edited_at) if entry.edited_at else None,
        deleted=entry.deleted,
    )
