"""Friend groups (the seeds' 分组): named lists of one's friends (tables)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.user import User

GROUP_NAME_MAX = 30


class FriendGroup(Model):
    id = fields.BigIntField(primary_key=True)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="friend_groups", on_delete=fields.CASCADE
    )
    owner_id: str
    name = fields.CharField(max_length=GROUP_NAME_MAX)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "friend_group"
        unique_together = (("owner", "name"),)


class FriendGroupMember(Model):
    id = fields.BigIntField(primary_key=True)
    group: fields.ForeignKeyRelation[FriendGroup] = fields.ForeignKeyField(
        "models.FriendGroup", related_name="members", on_delete=fields.CASCADE
    )
    friend: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    group_id: int
    friend_id: str
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "friend_group_member"
        unique_together = (("group", "friend"),)
