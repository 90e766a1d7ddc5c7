"""Polls (docs/messages.md): a poll is a message (`msg_type` poll) whose content is kept current
as votes arrive; its options and votes live here, one row per user and option."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.message import Message
from models.thread import Thread

QUESTION_MAX = 300
OPTION_TEXT_MAX = 100
OPTIONS_MIN = 2
OPTIONS_MAX = 10


class Poll(Model):
    id = fields.CharField(primary_key=True, max_length=32)
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="polls", on_delete=fields.CASCADE
    )
    thread_id: str
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="polls", on_delete=fields.CASCADE
    )
    message_id: str
    creator_id = fields.CharField(max_length=64)
    question = fields.CharField(max_length=QUESTION_MAX)
    multiple = fields.BooleanField(default=False)
    closes_at = fields.DatetimeField(null=True)
    closed = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "poll"


class PollOption(Model):
    id = fields.BigIntField(primary_key=True)
    poll: fields.ForeignKeyRelation[Poll] = fields.ForeignKeyField(
        "models.Poll", related_name="options", on_delete=fields.CASCADE
    )
    poll_id: str
    option_id = fields.IntField()
    text = fields.CharField(max_length=OPTION_TEXT_MAX)

    class Meta:
        table = "poll_option"
        unique_together = (("poll", "option_id"),)


class PollVote(Model):
    id = fields.BigIntField(primary_key=True)
    poll: fields.ForeignKeyRelation[Poll] = fields.ForeignKeyField(
        "models.Poll", related_name="votes", on_delete=fields.CASCADE
    )
    poll_id: str
    option_id = fields.IntField()
    user_id = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "poll_vote"
        unique_together = (("poll", "option_id", "user_id"),)
