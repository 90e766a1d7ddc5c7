"""Group notices (announcements): written by the owner or admins, read by members."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.thread import Thread
from models.user import User

ANNOUNCEMENT_MAX_CHARS = 4000


class Announcement(Model):
    id = fields.BigIntField(primary_key=True)
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="announcements", on_delete=fields.CASCADE
    )
    author: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    thread_id: str
    author_id: str | None
    content = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "thread_announcement"
        indexes = (("thread_id",),)
