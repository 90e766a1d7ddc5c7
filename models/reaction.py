"""Reactions to messages (docs/messages.md): one row per user, message and emoji, so "once per
user, message and emoji" is the table's unique key. History groups them per message."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from contract.commands import EMOJI_MAX
from models.message import Message


class Reaction(Model):
    id = fields.BigIntField(primary_key=True)
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="reactions", on_delete=fields.CASCADE
    )
    message_id: str
    thread_id = fields.CharField(max_length=32)
    user_id = fields.CharField(max_length=64)
    emoji = fields.CharField(max_length=EMOJI_MAX)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "message_reaction"
        unique_together = (("message", "user_id", "emoji"),)
