"""Friendships, friend requests and blocks (tables; the operations build on these)."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.user import User


class RequestStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Friendship(Model):
    """One row per direction: (a, b) and (b, a) both exist while a and b are friends."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="friendships", on_delete=fields.CASCADE
    )
    friend: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    user_id: str
    friend_id: str
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "friendship"
        unique_together = (("user", "friend"),)


class FriendRequest(Model):
    id = fields.BigIntField(primary_key=True)
    from_user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    to_user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    from_user_id: str
    to_user_id: str
    message = fields.CharField(max_length=200, default="")
    status = fields.CharEnumField(RequestStatus, max_length=8, default=RequestStatus.PENDING)
    created_at = fields.DatetimeField(auto_now_add=True)
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "friend_request"
        indexes = (("to_user_id", "status"), ("from_user_id", "status"))


class Block(Model):
    """`user` blocked `blocked`: no messages in direct threads, no requests, no presence."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="blocks", on_delete=fields.CASCADE
    )
    blocked: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    user_id: str
    blocked_id: str
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "user_block"
        unique_together = (("user", "blocked"),)
