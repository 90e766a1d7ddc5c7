"""Earlier versions of edited messages (docs/messages.md, `GET …/messages/{mid}/edits`): the
message row holds the latest version; this table every version, the original as version 0.
An unsend deletes the rows (their text is the message's text)."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from models.message import Message


class MessageVersion(Model):
    id = fields.BigIntField(primary_key=True)
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="versions", on_delete=fields.CASCADE
    )
    message_id: str
    version = fields.IntField()
    body = fields.TextField(null=True)
    content: Any = fields.JSONField(null=True)
    # When this version was written: the send time for version 0, else the edit time.
    created_at = fields.DatetimeField()
    # The seq of the `message_edit` entry that wrote it (None for version 0): an unsend erases
    # those entries by key, never by walking the thread.
    entry_seq = fields.BigIntField(null=True)

    class Meta:
        table = "message_version"
        unique_together = (("message", "version"),)
