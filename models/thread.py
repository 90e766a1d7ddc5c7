"""Threads (direct and group) and their members, with each member's role and read position.

`last_seq` on the thread row is the high-water mark of its timeline; it is only ever advanced by
`models.message.allocate_seqs` inside a transaction, which is what keeps seqs gapless.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from contract.errors import NotAMemberError, ThreadNotFoundError
from models.user import User


class ThreadKind(StrEnum):
    DIRECT = "direct"
    GROUP = "group"


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class Thread(Model):
    id = fields.CharField(primary_key=True, max_length=64)
    kind = fields.CharEnumField(ThreadKind, max_length=8)
    name = fields.CharField(max_length=100, null=True)
    owner: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    owner_id: str | None  # the raw column tortoise adds for `owner`
    # "a:b" with the two user ids sorted: makes a direct thread between two users unique.
    direct_key = fields.CharField(max_length=130, unique=True, null=True)
    last_seq = fields.BigIntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_activity_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "thread"


class Member(Model):
    id = fields.BigIntField(primary_key=True)
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="members", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="memberships", on_delete=fields.CASCADE
    )
    thread_id: str  # the raw columns tortoise adds for the foreign keys
    user_id: str
    role = fields.CharEnumField(Role, max_length=8, default=Role.MEMBER)
    read_seq = fields.BigIntField(default=0)
    joined_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "thread_member"
        unique_together = (("thread", "user"),)
        indexes = (("user_id",),)


async def get_thread(thread_id: str, conn: BaseDBAsyncClient | None = None) -> Thread:
    thread = await Thread.filter(id=thread_id).using_db(conn).first()
    if thread is None:
        raise ThreadNotFoundError(thread_id)
    return thread


async def get_membership(
    thread_id: str, user_id: str, conn: BaseDBAsyncClient | None = None
) -> Member:
    """The caller's membership; ThreadNotFoundError or NotAMemberError otherwise."""
    member = await Member.filter(thread_id=thread_id, user_id=user_id).using_db(conn).first()
    if member is None:
        if not await Thread.filter(id=thread_id).using_db(conn).exists():
            raise ThreadNotFoundError(thread_id)
        raise NotAMemberError(thread_id)
    return member


async def check_member(thread_id: str, user_id: str) -> None:
    """Raise ThreadNotFoundError or NotAMemberError unless the user is in the thread."""
    _ = await get_membership(thread_id, user_id)


@dataclass(frozen=True)
class Roster:
    """A thread and its members, longest-serving first."""

    thread: Thread
    members: list[Member]


async def get_roster(thread_id: str, viewer_id: str) -> Roster:
    """The thread and its members, for a member (ThreadNotFoundError or NotAMemberError else)."""
    await check_member(thread_id, viewer_id)
    thread = await Thread.get(id=thread_id)
    return Roster(thread, list(await Member.filter(thread_id=thread_id).order_by("id")))


async def member_ids(thread_id: str) -> list[str]:
    rows = await Member.filter(thread_id=thread_id).order_by("id").values_list(
        "user_id", flat=True
    )
    return cast(list[str], rows)


async def is_member(thread_id: str, user_id: str) -> bool:
    return await Member.exists(thread_id=thread_id, user_id=user_id)
