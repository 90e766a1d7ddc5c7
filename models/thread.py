"""Threads (direct, group, room), their current members and their former members.

`last_seq` on the thread row is the high-water mark of its timeline; it is only ever advanced by
`models.message.allocate_seqs` inside a transaction, which is what keeps seqs gapless.

`Member` rows are the *current* members only, so every query over them is a query over who is in
the thread now; who left or was removed is a `PastMember` row (their join and leave seqs, for
history visibility). Keeping the two apart makes a forgotten filter fail closed: a former member
can never pass a membership check by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import MAXYEAR, UTC, datetime
from enum import IntEnum, StrEnum
from typing import cast

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model
from tortoise.queryset import QuerySet

from contract.errors import (
    NotAdminError,
    NotAMemberError,
    NotOwnerError,
    ThreadDissolvedError,
    ThreadNotFoundError,
)
from models.bots import bot_ids
from models.user import User


class ThreadKind(StrEnum):
    DIRECT = "direct"
    GROUP = "group"
    ROOM = "room"  # public, with a capacity and maybe a place (docs/threads.md)


class ThreadStatus(StrEnum):
    ACTIVE = "active"
    DISSOLVED = "dissolved"  # by its owner: readable, but no more sends or changes


class HistoryVisibility(StrEnum):
    JOINED = "joined"  # a member reads entries from the one that added them
    SHARED = "shared"  # a member reads every entry


class Visibility(StrEnum):
    PRIVATE = "private"
    PUBLIC = "public"  # anyone may join (POST /api/threads/{id}/join); rooms always are


# An indefinite mute by the owner or an admin ("until unmuted") is this far-future `muted_until`,
# so "is this member muted" is one comparison everywhere.
MUTED_FOREVER = datetime(MAXYEAR, 12, 31, tzinfo=UTC)


class MemberStatus(StrEnum):
    ACTIVE = "active"
    LEFT = "left"
    REMOVED = "removed"


class RecvOpt(IntEnum):
    """A member's `recv_msg_opt`: how the thread reaches them."""

    NORMAL = 0
    NO_NOTIFICATIONS = 1
    NOT_DELIVERED = 2  # the broker stops delivering the thread's events to them


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
    # How it looks (PATCH /api/threads/{id}).
    image_url = fields.CharField(max_length=1024, null=True)
    color = fields.CharField(max_length=7, null=True)  # #RRGGBB
    emoji = fields.CharField(max_length=32, null=True)  # one emoji (a grapheme cluster)
    description = fields.CharField(max_length=1000, null=True)
    status = fields.CharEnumField(ThreadStatus, max_length=10, default=ThreadStatus.ACTIVE,
                                  db_default=ThreadStatus.ACTIVE.value)
    dissolved_at = fields.DatetimeField(null=True)
    # (Every column added to an existing table has a database default: an upgrade must be able
    # to add it to rows that are already there.)
    # Settings (changed together, one log:thread-settings entry per change).
    history_visibility = fields.CharEnumField(
        HistoryVisibility, max_length=8, default=HistoryVisibility.JOINED,
        db_default=HistoryVisibility.JOINED.value)
    join_approval = fields.BooleanField(default=False, db_default=False)
    admins_only_send = fields.BooleanField(default=False, db_default=False)
    visibility = fields.CharEnumField(Visibility, max_length=8, default=Visibility.PRIVATE,
                                      db_default=Visibility.PRIVATE.value)
    # Rooms: how many members at most, and where (for GET /api/rooms?near=).
    capacity = fields.IntField(null=True)
    lat = fields.FloatField(null=True)
    lng = fields.FloatField(null=True)

    class Meta:
        table = "thread"
        indexes = (("kind", "lat"),)


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
    # The first seq this member may read under `joined` visibility: the seq of the entry that
    # added them (1 for a thread's first members).
    join_seq = fields.BigIntField(default=1, db_default=1)
    delivered_seq = fields.BigIntField(default=0, db_default=0)
    nickname = fields.CharField(max_length=64, null=True)
    # Muted by the owner or an admin: sends refused (3010) until then.
    muted_until = fields.DatetimeField(null=True)
    # The member's own settings (PATCH /api/threads/{id}/settings). `notify_muted_until` is
    # what the thread list and that PATCH call `muted_until`: no notifications until then.
    pinned = fields.BooleanField(default=False, db_default=False)
    archived = fields.BooleanField(default=False, db_default=False)
    marked_unread = fields.BooleanField(default=False, db_default=False)
    notify_muted_until = fields.DatetimeField(null=True)
    recv_msg_opt = fields.SmallIntField(default=RecvOpt.NORMAL, db_default=RecvOpt.NORMAL.value)
    # A direct thread opened by someone who is not this member's friend, not yet accepted:
    # listed only under ?requests=true, no unread counted.
    is_request = fields.BooleanField(default=False, db_default=False)

    class Meta:
        table = "thread_member"
        unique_together = (("thread", "user"),)
        indexes = (("user_id",),)


class PastMember(Model):
    """Someone who left or was removed: they keep read access to entries from `join_seq` up to
    `leave_seq` (the entry that recorded their leaving). A rejoin deletes the row: a member who
    rejoins reads from their latest join."""

    id = fields.BigIntField(primary_key=True)
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="past_members", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="past_memberships", on_delete=fields.CASCADE
    )
    thread_id: str
    user_id: str
    status = fields.CharEnumField(MemberStatus, max_length=8)
    join_seq = fields.BigIntField()
    leave_seq = fields.BigIntField()
    joined_at = fields.DatetimeField()
    left_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "thread_member_past"
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
    bot_ids: frozenset[str] = frozenset()  # the members that are bot accounts


async def get_roster(thread_id: str, viewer_id: str) -> Roster:
    """The thread and its members, for a member (ThreadNotFoundError or NotAMemberError else)."""
    await check_member(thread_id, viewer_id)
    thread = await Thread.get(id=thread_id)
    members = list(await Member.filter(thread_id=thread_id).order_by("id"))
    return Roster(thread, members, await bot_ids(m.user_id for m in members))


async def member_ids(thread_id: str) -> list[str]:
    rows = await Member.filter(thread_id=thread_id).order_by("id").values_list(
        "user_id", flat=True
    )
    return cast(list[str], rows)


# Who the broker lets subscribe to and receive a thread's topic: its current members, except
# those with recv_msg_opt 2, while the thread is active (a dissolved thread publishes nothing
# more; its members read its history over HTTP). Every change to any of these three calls
# `AccessSync.membership_changed` with `receiver_ids` after commit.


def _receivers(thread_id: str) -> QuerySet[Member]:
    return Member.filter(thread_id=thread_id, thread__status=ThreadStatus.ACTIVE).exclude(
        recv_msg_opt=RecvOpt.NOT_DELIVERED)


async def receiver_ids(thread_id: str) -> list[str]:
    """The users the broker delivers the thread's events to (see above)."""
    rows = await _receivers(thread_id).order_by("id").values_list("user_id", flat=True)
    return cast(list[str], rows)


async def is_receiver(thread_id: str, user_id: str) -> bool:
    return await _receivers(thread_id).filter(user_id=user_id).exists()


async def all_receivers() -> list[tuple[str, str]]:
    """Every (thread, user) the broker delivers to, for a full sync of Mosquitto's plugin."""
    rows = await Member.filter(thread__status=ThreadStatus.ACTIVE).exclude(
        recv_msg_opt=RecvOpt.NOT_DELIVERED).order_by("id").values_list("thread_id", "user_id")
    return [(str(t), str(u)) for t, u in rows]


# The checks of governance actions, on rows read inside the action's transaction.


async def lock_thread(conn: BaseDBAsyncClient, thread_id: str) -> Thread:
    """The thread, row-locked until commit (SQLite: the transaction holds the write lock).

    Lock the thread before any member row: models.append locks threads first too, so the two
    never deadlock."""
    thread = await Thread.filter(id=thread_id).using_db(conn).select_for_update().first()
    if thread is None:
        raise ThreadNotFoundError(thread_id)
    return thread


def require_active(thread: Thread) -> None:
    if thread.status == ThreadStatus.DISSOLVED:
        raise ThreadDissolvedError(thread.id)


def is_admin(member: Member) -> bool:
    """The owner counts as an admin everywhere."""
    return member.role in (Role.OWNER, Role.ADMIN)


def require_admin(member: Member) -> None:
    if not is_admin(member):
        raise NotAdminError("only the owner or an admin may do this")


def require_owner(member: Member) -> None:
    if member.role != Role.OWNER:
        raise NotOwnerError("only the owner may do this")
