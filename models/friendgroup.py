"""Friend groups (the seeds' 分组): named lists of one's friends, the tables and the operations.

Rules: a group belongs to one owner, who alone sees or changes it (to anyone else it does not
exist: 404, not 403). Its name is 1-30 characters and unique among the owner's groups. It holds
only the owner's friends, each at most once. A member is a reference to the friendship row
(owner, friend), ON DELETE CASCADE: when a friendship ends, the database takes each user out of
the other's groups, and no code has to. Deleting a group ends no friendship.

This module returns rows and small dataclasses; how they are shown is the use case's business
(actions/friendgroups.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from contract.errors import AlreadyExistsError, InvalidParameterError, NotFoundError
from models.friendship import PK_MAX, Friendship, friendship_ids, lock_users
from models.user import User, check_id_ref, check_text

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
    """A friend in a group of its owner, by the friendship row (owner, friend)."""

    id = fields.BigIntField(primary_key=True)
    group: fields.ForeignKeyRelation[FriendGroup] = fields.ForeignKeyField(
        "models.FriendGroup", related_name="members", on_delete=fields.CASCADE
    )
    # Indexed: every ending friendship looks its members up by it.
    friendship: fields.ForeignKeyRelation[Friendship] = fields.ForeignKeyField(
        "models.Friendship", related_name="group_members", on_delete=fields.CASCADE,
        db_index=True,
    )
    group_id: int
    friendship_id: int
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "friend_group_member"
        unique_together = (("group", "friendship"),)


@dataclass(frozen=True)
class GroupCount:
    group: FriendGroup
    member_count: int


@dataclass(frozen=True)
class GroupRef:
    """One of the owner's groups that a friend is in."""

    id: int
    name: str


def check_group_name(name: str) -> str:
    name = check_text(name, "name").strip()
    if not name or len(name) > GROUP_NAME_MAX:
        raise InvalidParameterError(f"name must be 1 to {GROUP_NAME_MAX} characters")
    return name


async def _own_group(owner_id: str, group_id: int, conn: BaseDBAsyncClient | None = None
                     ) -> FriendGroup:
    """The owner's group. Another user's group is "not found" too, so ids reveal nothing."""
    group = (await FriendGroup.filter(id=group_id, owner_id=owner_id).using_db(conn).first()
             if 0 < group_id <= PK_MAX else None)
    if group is None:
        raise NotFoundError(f"friend group {group_id} not found")
    return group


async def _check_name_free(owner_id: str, name: str, conn: BaseDBAsyncClient) -> None:
    if await FriendGroup.filter(owner_id=owner_id, name=name).using_db(conn).exists():
        raise AlreadyExistsError(f"you already have a friend group named {name!r}")


async def _count_members(group_ids: list[int]) -> dict[int, int]:
    rows = await FriendGroupMember.filter(group_id__in=group_ids).values_list(
        "group_id", flat=True)
    counts: dict[int, int] = dict.fromkeys(group_ids, 0)
    for group_id in rows:
        counts[cast(int, group_id)] += 1
    return counts


async def list_groups(owner_id: str) -> list[GroupCount]:
    """The owner's groups, oldest first, with their member counts."""
    groups = await FriendGroup.filter(owner_id=owner_id).order_by("id")
    counts = await _count_members([g.id for g in groups])
    return [GroupCount(g, counts[g.id]) for g in groups]


async def create_group(owner_id: str, name: str) -> FriendGroup:
    """A new empty group; AlreadyExistsError if the owner has one of that name."""
    name = check_group_name(name)
    try:
        async with in_transaction() as conn:
            await _check_name_free(owner_id, name, conn)
            group = await FriendGroup.create(owner_id=owner_id, name=name, using_db=conn)
    except IntegrityError as exc:  # a concurrent create of the same name won
        raise AlreadyExistsError(f"you already have a friend group named {name!r}") from exc
    return group


async def rename_group(owner_id: str, group_id: int, name: str) -> GroupCount:
    name = check_group_name(name)
    try:
        async with in_transaction() as conn:
            group = await _own_group(owner_id, group_id, conn)
            if group.name != name:
                await _check_name_free(owner_id, name, conn)
                group.name = name
                await group.save(using_db=conn, update_fields=["name"])
    except IntegrityError as exc:
        raise AlreadyExistsError(f"you already have a friend group named {name!r}") from exc
    return GroupCount(group, (await _count_members([group.id]))[group.id])


async def delete_group(owner_id: str, group_id: int) -> None:
    """Delete a group; its members stay friends."""
    group = await _own_group(owner_id, group_id)
    await group.delete()


async def _members(group_id: int) -> list[User]:
    rows = await FriendGroupMember.filter(group_id=group_id).select_related(
        "friendship__friend").order_by("id")
    return [r.friendship.friend for r in rows]


async def list_group_members(owner_id: str, group_id: int) -> list[User]:
    """The members of the owner's group, in the order they were added."""
    return await _members((await _own_group(owner_id, group_id)).id)


async def get_group(owner_id: str, group_id: int) -> tuple[FriendGroup, list[User]]:
    """The owner's group with its members, in the order they were added."""
    group = await _own_group(owner_id, group_id)
    return group, await _members(group.id)


async def add_group_members(owner_id: str, group_id: int, user_ids: Sequence[str]) -> list[str]:
    """Put friends into the owner's group. InvalidParameterError names those who are not
    friends; AlreadyExistsError those already in it. All or nothing."""
    wanted = [check_id_ref(u) for u in dict.fromkeys(user_ids)]
    if not wanted:
        raise InvalidParameterError("user_ids must name at least one friend")
    async with in_transaction() as conn:
        # The owner's lock orders this after a concurrent unfriending (which holds it too), so
        # the friendships found here are still there to be referenced.
        _ = await lock_users(conn, owner_id)
        group = await _own_group(owner_id, group_id, conn)
        friendships = await friendship_ids(owner_id, wanted, conn)
        strangers = [u for u in wanted if u not in friendships]
        if strangers:
            raise InvalidParameterError(f"not your friends: {', '.join(strangers)}")
        rows = await FriendGroupMember.filter(
            group_id=group.id, friendship_id__in=list(friendships.values())
        ).using_db(conn).values_list("friendship_id", flat=True)
        present = {cast(int, r) for r in rows}
        if present:
            names = ", ".join(sorted(u for u, f in friendships.items() if f in present))
            raise AlreadyExistsError(f"already in friend group {group.name!r}: {names}")
        await FriendGroupMember.bulk_create(
            [FriendGroupMember(group_id=group.id, friendship_id=friendships[uid])
             for uid in wanted], using_db=conn,
        )
    return wanted


async def remove_group_member(owner_id: str, group_id: int, user_id: str) -> None:
    """Take someone out of the owner's group (they stay friends)."""
    check_id_ref(user_id)
    group = await _own_group(owner_id, group_id)
    friendship = (await friendship_ids(owner_id, [user_id])).get(user_id)
    if friendship is None or not await FriendGroupMember.filter(
            group_id=group.id, friendship_id=friendship).delete():
        raise NotFoundError(f"{user_id} is not in friend group {group.name!r}")


async def groups_by_member(owner_id: str, friend_ids: Sequence[str]) -> dict[str, list[GroupRef]]:
    """For each of `friend_ids`, the owner's groups they are in (oldest first)."""
    if not friend_ids:
        return {}
    rows = await FriendGroupMember.filter(
        friendship__user_id=owner_id, friendship__friend_id__in=list(friend_ids)
    ).select_related("group", "friendship").order_by("group_id")
    out: dict[str, list[GroupRef]] = {}
    for row in rows:
        out.setdefault(row.friendship.friend_id, []).append(GroupRef(row.group.id, row.group.name))
    return out
