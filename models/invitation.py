"""Invitations and join requests of threads with `join_approval` on, decided by the owner or an
admin (DESIGN: POST /api/threads/{id}/members by a non-admin, POST …/join)."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.thread import Thread
from models.user import User


class InvitationStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Invitation(Model):
    """A user waiting to be let into a thread: invited by a member (`inviter`), or asking to
    join themselves (`inviter` is None)."""

    id = fields.BigIntField(primary_key=True)
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="invitations", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="invitations", on_delete=fields.CASCADE
    )
    inviter: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    decided_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    thread_id: str
    user_id: str
    inviter_id: str | None
    decided_by_id: str | None
    status = fields.CharEnumField(InvitationStatus, max_length=8, default=InvitationStatus.PENDING)
    created_at = fields.DatetimeField(auto_now_add=True)
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "thread_invitation"
        indexes = (("thread_id", "status"), ("user_id",))
