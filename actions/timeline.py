"""Timeline entries as the contract shows them: a stored message, thread event or action entry
of the models becomes the `message`/`message_reply`, `event`, `message_reaction`,
`message_unsend`, `message_edit` or `poll_update` object that MQTT publishes and history returns.

`entry_event` renders a row as stored; history then adds each message's current state
(reactions, reply count, the caller's status: actions/history.py).

A message's event is built without validation: its fields come from a row the server wrote
after checking the draft (models/message.py `check_draft`), and validating them again was a
tenth of a message's CPU. pydantic's own `model_construct` is slower than validating (it looks
up each field's default in Python), so `_trusted` sets the fields directly as it does. The
end-to-end suite validates every event it receives against contract/events.py, and a unit test
checks that the bytes equal those of the validated event.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

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
from models.append import StoredMessage
from models.clock import epoch_ms
from models.message import EntryKind, Message

_ACTIONS: dict[str, type[MessageReactionEvent | MessageUnsendEvent | MessageEditEvent
                         | PollUpdateEvent]] = {
    "message_reaction": MessageReactionEvent, "message_unsend": MessageUnsendEvent,
    "message_edit": MessageEditEvent, "poll_update": PollUpdateEvent,
}


_M = TypeVar("_M", bound=BaseModel)
# The fields entry_event gives a MessageEvent (the rest keep their defaults), as validation
# would record them in `model_fields_set`.
_MESSAGE_GIVEN = frozenset(MessageEvent.model_fields) - {"reactions", "reply_count", "status"}


def _trusted(cls: type[_M], values: dict[str, Any], given: frozenset[str]) -> _M:
    """What `cls.model_construct(**values)` builds, for values that name every field of `cls`
    in declaration order (the order they are serialised in) and are already of their types."""
    event = cls.__new__(cls)
    object.__setattr__(event, "__dict__", values)
    object.__setattr__(event, "__pydantic_fields_set__", set(given))
    object.__setattr__(event, "__pydantic_extra__", None)
    object.__setattr__(event, "__pydantic_private__", None)
    return event


def entry_event(entry: Message | StoredMessage) -> TimelineEvent:
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
    return _trusted(MessageEvent, {
        "thread_id": entry.thread_id, "seq": entry.seq, "message_id": entry.id,
        "created_at": created_at, "type": "message_reply" if entry.reply_to else "message",
        "sender_id": entry.sender_id, "client_msg_id": entry.client_msg_id,
        "msg_type": entry.type, "body": entry.body, "reply_to": entry.reply_to,
        "mentions": entry.mentions or [], "attachments": entry.attachments or [],
        "content": entry.content,
        "forwarded_from": (ForwardedFrom.model_validate(entry.forwarded_from)
                           if entry.forwarded_from else None),
        "edited_at": epoch_ms(entry.edited_at) if entry.edited_at else None,
        "deleted": entry.deleted, "reactions": {}, "reply_count": 0, "status": None,
    }, _MESSAGE_GIVEN)
